"""Evaluation driver: answer_fn plumbing, paper tables, JSON / model-index output, ablation runner."""

import json
import random
from collections import Counter

import datasets
import pytest
import yaml

from humocon_hf.data.loaders import QA_FEATURES, load_activitynet_qa, load_babel_qa
from humocon_hf.evaluation import (
    ABLATION_VARIANTS,
    evaluate_motion_qa,
    evaluate_video_qa,
    format_ablation_table,
    format_table,
    main,
    run_ablation,
    write_results,
)
from humocon_hf.metrics.llm_judge import LLMJudge

# (id, question, answer, query type, relation type, prediction)
ROWS = [
    ("1", "What action does the person do before they move left?", "walk", "action", "before", "walking"),
    ("2", "What action does the person do after they sit?", "stand up", "action", "after", "sit"),
    ("3", "What direction does the person move?", "backwards", "direction", "none", "backward"),
    ("4", "What body part does the person use after they kneel and before they stand up?", "left leg",
     "body_part", "in between", "right leg"),
]
# by hand: correct = rows 1 and 3 -> overall 2/4; action 1/2; direction 1/1; body part 0/1;
# before 1/1; after 0/1; other (in between + none: rows 3, 4) 1/2


def _cells(table: str, first: str) -> list[str]:
    """The stripped cells of the table row whose first cell is `first`."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in\n{table}")


def _dataset():
    return datasets.Dataset.from_list(
        [{"id": i, "question": q, "answer": a, "motion_path": f"/m/{i}.npy", "video_path": None, "query_type": qt,
          "relation_type": rt, "conversations": [{"role": "user", "content": q}]} for i, q, a, qt, rt, _ in ROWS],
        features=QA_FEATURES,
    )


def _scripted_answer_fn(batches_seen):
    predictions = {r[0]: r[5] for r in ROWS}

    def answer_fn(rows):
        batches_seen.append([r["id"] for r in rows])
        assert all(r["motion_path"] == f"/m/{r['id']}.npy" for r in rows)
        return [predictions[r["id"]] for r in rows]

    return answer_fn


def test_evaluate_motion_qa_hand_computed():
    seen = []
    res = evaluate_motion_qa(_scripted_answer_fn(seen), _dataset(), batch_size=3, model_name="scripted")
    assert seen == [["1", "2", "3"], ["4"]]
    m = res["metrics"]
    assert (m["accuracy"], m["action"], m["direction"], m["body_part"]) == (0.5, 0.5, 1.0, 0.0)
    assert (m["before"], m["after"], m["other"]) == (1.0, 0.0, 0.5)
    assert [p["correct"] for p in res["predictions"]] == [True, False, True, False]
    assert res["dataset"]["num_examples"] == 4 and res["model_name"] == "scripted"
    assert json.loads(json.dumps(res)) == res  # JSON-serialisable as is


def test_prompts_of_similar_length_are_batched_together_and_answers_keep_their_order():
    """An answer function that tells a row's prompt length gets its batches sorted by it; the results do not move."""
    seen = []
    answer_fn = _scripted_answer_fn(seen)
    answer_fn.approximate_length = lambda row: {"1": 9, "2": 1, "3": 5, "4": 2}[row["id"]]
    plain = evaluate_motion_qa(_scripted_answer_fn([]), _dataset(), batch_size=2)
    res = evaluate_motion_qa(answer_fn, _dataset(), batch_size=2)
    assert seen == [["2", "4"], ["3", "1"]]
    assert res["predictions"] == plain["predictions"] and res["metrics"] == plain["metrics"]
    assert evaluate_motion_qa(answer_fn, _dataset(), batch_size=2, limit=3)["dataset"]["num_examples"] == 3


def test_answer_fn_contract_errors():
    ds = _dataset()
    with pytest.raises(ValueError, match="must return a list of 2 strings .* got a string"):
        evaluate_motion_qa(lambda rows: "walk", ds, batch_size=2)
    with pytest.raises(ValueError, match="must return a list of 2 strings .* got list of length 1"):
        evaluate_motion_qa(lambda rows: ["walk"], ds, batch_size=2)
    with pytest.raises(ValueError, match="returned NoneType for row 0"):
        evaluate_motion_qa(lambda rows: [None] * len(rows), ds)
    with pytest.raises(ValueError, match="empty"):
        evaluate_motion_qa(lambda rows: [], ds.select([]))


def test_majority_baseline_on_real_babel_qa(shared_data):
    dd = load_babel_qa(shared_data / "babel_qa")
    majority = {}
    for qt in ("action", "direction", "body_part"):
        majority[qt] = Counter(a for a, q in zip(dd["train"]["answer"], dd["train"]["query_type"]) if q == qt).most_common(1)[0][0]
    res = evaluate_motion_qa(lambda rows: [majority[r["query_type"]] for r in rows], dd["test"], batch_size=64,
                             model_name="majority per query type", keep_predictions=False)
    test = dd["test"]
    hits = [a == majority[q] for a, q in zip(test["answer"], test["query_type"])]
    assert res["metrics"]["accuracy"] == pytest.approx(sum(hits) / 393)
    for qt in majority:
        idx = [i for i, q in enumerate(test["query_type"]) if q == qt]
        assert res["metrics"][qt] == pytest.approx(sum(hits[i] for i in idx) / len(idx))
    table = format_table(res)
    assert "majority per query type" in table and f"{res['metrics']['accuracy']:.3f}" in table


def test_format_table_paper_columns():
    res = evaluate_motion_qa(_scripted_answer_fn([]), _dataset(), model_name="A")
    other = json.loads(json.dumps(res))
    other["model_name"], other["metrics"]["direction"] = "B", None
    lines = format_table([res, other]).splitlines()
    assert lines[0] == "BABEL-QA"
    assert [c.strip() for c in lines[1].strip("|").split("|")] == [
        "Model", "Overall", "Action", "Direction", "Body part", "Before", "After", "Other"]
    assert [c.strip() for c in lines[3].strip("|").split("|")] == ["A", "0.500", "0.500", "1.000", "0.000", "1.000", "0.000", "0.500"]
    assert [c.strip() for c in lines[4].strip("|").split("|")][3] == "-"


def test_write_results_json_and_model_index(tmp_path):
    from huggingface_hub.repocard_data import model_index_to_eval_results

    res = evaluate_motion_qa(_scripted_answer_fn([]), _dataset(), model_name="humocon-test")
    paths = write_results(res, tmp_path / "out")
    assert json.loads(paths["json"].read_text()) == res
    assert _cells(paths["table"].read_text(), "humocon-test")[1] == "0.500"
    index = yaml.safe_load(paths["model_index"].read_text())["model-index"]
    name, evals = model_index_to_eval_results(index)
    assert name == "humocon-test"
    by_name = {e.metric_name: e for e in evals}
    assert by_name["Overall accuracy"].metric_value == 0.5 and by_name["Body part accuracy"].metric_value == 0.0
    assert {e.dataset_name for e in evals} == {"BABEL-QA"} and {e.dataset_split for e in evals} == {"test"}
    assert index[0]["results"][0]["task"]["type"] == "question-answering"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "results.json", "results_model_index.yaml", "results_table.md"]


def test_evaluate_video_qa_with_scripted_judge(shared_data):
    ds = load_activitynet_qa(shared_data / "activitynet_qa" / "test_q_sample.json",
                             shared_data / "activitynet_qa" / "test_a_sample.json")
    first = ds.select(range(10))
    answers = first["answer"]

    def judge_fn(messages):  # scripted judge: correct iff the prediction equals the reference
        text = messages[1]["content"]
        ref = text.split("Correct answer: ")[1].split("\n")[0]
        pred = text.split("Predicted answer: ")[1].split("\n")[0]
        return "{'pred': 'yes', 'score': 5}" if ref == pred else "{'pred': 'no', 'score': 1}"

    res = evaluate_video_qa(lambda rows: ["yes"] * len(rows), first, LLMJudge(generate_fn=judge_fn),
                            model_name="always yes")
    n_yes = sum(a == "yes" for a in answers)
    assert res["metrics"]["accuracy"] == pytest.approx(n_yes / 10)
    assert res["metrics"]["score"] == pytest.approx((5 * n_yes + (10 - n_yes)) / 10)
    assert res["metrics"]["num_fallbacks"] == 0 and len(res["predictions"]) == 10
    lines = format_table(res).splitlines()
    assert lines[0] == "ActivityNet-QA" and "Accuracy" in lines[1] and "Score" in lines[1]
    assert f"{100 * n_yes / 10:.1f}" in lines[3]


def test_run_ablation_with_stand_in_training(tmp_path, capsys):
    calls = []

    def train_fn(overrides):
        calls.append(dict(overrides))
        noise = random.random()  # identical for every variant because the runner re-seeds
        calls[-1]["noise"] = noise
        preds = {r[0]: (r[2] if overrides.get("use_alignment", True) else "jump") for r in ROWS}
        return lambda rows: [preds[r["id"]] for r in rows]

    out = run_ablation(train_fn, _dataset(), seed=7, out_dir=tmp_path)
    assert list(out) == list(ABLATION_VARIANTS)
    assert [c["seed"] for c in calls] == [7] * 5 and len({c["noise"] for c in calls}) == 1
    assert calls[4] == {"use_alignment": False, "seed": 7, "noise": calls[0]["noise"]}
    assert out["full"]["metrics"]["accuracy"] == 1.0 and out["w/o alignment"]["metrics"]["accuracy"] == 0.0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split("|")[1].strip() == "Variant"
    assert _cells(printed, "w/o velocity reconstruction")[1:] == ["1.000"] * 7
    saved = json.loads((tmp_path / "ablation.json").read_text())
    assert saved["w/o alignment"]["variant_overrides"] == {"use_alignment": False}
    assert format_ablation_table(saved) == (tmp_path / "ablation_table.md").read_text().strip()
    with pytest.raises(ValueError, match="returned NoneType, expected an answer_fn"):
        run_ablation(lambda o: None, _dataset(), variants={"full": {}}, print_table=False)


def test_cli_table(tmp_path, capsys):
    res = evaluate_motion_qa(_scripted_answer_fn([]), _dataset(), model_name="cli-model")
    paths = write_results(res, tmp_path)
    assert main(["table", str(paths["json"])]) == 0
    assert _cells(capsys.readouterr().out, "cli-model")[1:3] == ["0.500", "0.500"]
    with pytest.raises(FileNotFoundError, match="missing.json: results file not found"):
        main(["table", str(tmp_path / "missing.json")])


def test_answer_fn_from_model_plumbing():
    import torch

    from humocon_hf.inference import answer_fn_from_model, build_conversation

    class FakeTokenizer:
        def decode(self, ids, skip_special_tokens=True):
            return " ".join({7: "walk", 8: "left", 2: ""}[int(i)] for i in ids).strip()

    class FakeProcessor:
        tokenizer = FakeTokenizer()

        def __init__(self):
            self.calls = []

        def apply_chat_template(self, conversation, **kwargs):
            self.calls.append((conversation, kwargs))
            return {"input_ids": torch.tensor([[1, 5, 6]]), "attention_mask": torch.ones(1, 3, dtype=torch.long)}

    class FakeModel:
        device = torch.device("cpu")

        def generate(self, input_ids, attention_mask, do_sample, max_new_tokens):
            assert do_sample is False and max_new_tokens == 4
            return torch.cat([input_ids, torch.tensor([[7, 8, 2]])], dim=1)  # prompt + "walk left <eos>"

    processor = FakeProcessor()
    answer_fn = answer_fn_from_model(FakeModel(), processor, max_new_tokens=4, system_prompt="Answer briefly.")
    rows = [{"id": "1", "question": "What does the person do?", "motion_path": "/m/1.npy", "video_path": None}]
    assert answer_fn(rows) == ["walk left"]
    conversation, kwargs = processor.calls[0]
    assert conversation == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": [{"type": "motion", "motion": "/m/1.npy"}, {"type": "text", "text": "\n"},
                                     {"type": "text", "text": "What does the person do?"}]},
    ]
    assert kwargs["add_generation_prompt"] is True and kwargs["tokenize"] is True
    video_row = {"question": "What happens?", "motion_path": None, "video_path": "/v.mp4"}
    assert build_conversation(video_row)[0]["content"][0] == {"type": "video", "video": "/v.mp4"}
    with pytest.raises(ValueError, match="'question' must be a non-empty string"):
        build_conversation({"id": "9", "question": ""})


def test_ablation_overrides_are_concept_discovery_config_fields():
    from humocon_hf.modeling.configuration_humocon_encoders import HuMoConConceptDiscoveryConfig

    config = HuMoConConceptDiscoveryConfig()
    for variant, overrides in ABLATION_VARIANTS.items():
        for key, value in overrides.items():
            assert getattr(config, key) is True and value is False, (variant, key)
