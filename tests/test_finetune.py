"""`humocon finetune` / `humocon_hf.finetune.finetune`: stage 3 only, from an existing checkpoint, on a user's QA file."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from humocon_tiny import build_tiny_checkpoint, write_motion_file

from humocon_hf.cli import main


def _qa_file(folder, motion, answer: str, n: int) -> str:
    rows = [{"motion_path": str(motion), "question": "What is the person doing?", "answer": answer} for _ in range(n)]
    path = folder / f"qa_{answer}_{n}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def _with_card(source, **meta) -> None:
    """Give the tiny checkpoint a card as the demo's has one (licence, base_model), for what the fine-tune inherits."""
    from huggingface_hub import ModelCard, ModelCardData

    ModelCard(f"---\n{ModelCardData(**meta).to_yaml()}\n---\n\n# tiny\n").save(source / "README.md")


def test_finetune_a_checkpoint_on_a_custom_qa_file_then_resume(tmp_path, smollm2_tokenizer_dir, capsys, monkeypatch):
    from conftest import parse_card_metadata
    from transformers import AutoModel

    import humocon_hf.hub as hub

    source = build_tiny_checkpoint(tmp_path, smollm2_tokenizer_dir)
    _with_card(source, license="apache-2.0", base_model="HuggingFaceTB/SmolLM2-135M-Instruct")
    motion = write_motion_file(tmp_path)
    train = _qa_file(tmp_path, motion, "jump", 16)
    held_out = _qa_file(tmp_path, motion, "jump", 4)
    out = tmp_path / "ft"
    args = ["finetune", "--model", str(source), "--data", train, "--eval-data", held_out, "--output-dir", str(out),
            "--max-steps", "30", "--old-questions", "6", "--license", "cc-by-nc-4.0",
            "--override", "tune.per_device_train_batch_size=4",
            "--override", "tune.learning_rate=3e-2", "--override", "tune.warmup_steps=0",
            "--override", "tune.bf16=false", "--override", "tune.save_steps=10", "--override", "tune.logging_steps=5"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    info = json.loads((out / "finetune.json").read_text())
    assert info["steps"] == 30 and info["train_rows"] == 16 and info["source"] == str(source)
    # The plan comes first, then the "before" evaluation says what it answers, then the measured time per step.
    plan = "fine-tuning ckpt on qa_jump_16.jsonl: 16 rows + 7 of its own procedural training questions an epoch"
    assert plan in printed and "batch 4, 6 steps an epoch: 30 steps = 5 epochs" in printed
    before = "before fine-tuning: answering 4 questions of qa_jump_4.jsonl and 6 held-out procedural questions"
    assert printed.index(plan) < printed.index(before) < printed.index("s a step: about")
    # 30% of an epoch's 23 rows are the checkpoint's own procedural questions, regenerated beside the output, new
    # ones in each of the 5 epochs.
    replayed = [json.loads(line) for line in (out / "procedural" / "train.jsonl").read_text().splitlines()]
    assert info["replay_rows"] == 7 and len({r["id"] for r in replayed}) == 5 * 7 and info["plan"]["rows"] == 23
    # The best checkpoint on --eval-data is kept (evaluated every epoch of 6 steps).
    assert info["best_step"] in (6, 12, 18, 24, 30) and "loss on the answers of qa_jump_4.jsonl" in printed
    # The tiny random LLM learns the one answer of the file: held-out accuracy rises (from 0) to 1; the old
    # abilities are measured on held-out procedural questions before and after.
    assert info["eval_before"]["accuracy"] == 0.0 and info["eval_after"]["accuracy"] == 1.0
    assert "0.0% before -> 100.0% after" in printed
    assert info["procedural_before"]["questions"] == info["procedural_after"]["questions"] == 6
    assert "what it knew, held-out procedural questions (6):" in printed

    card = (out / "README.md").read_text()
    meta = parse_card_metadata(card)
    assert card.splitlines()[meta_end(card) + 2] == "# ckpt-ft-qa_jump_16"  # from the base and the data, not "ft"
    assert meta["license"] == "cc-by-nc-4.0" and meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    index = meta["model-index"][0]
    assert index["name"] == "ckpt-ft-qa_jump_16"
    assert [r["dataset"]["name"] for r in index["results"]] == ["qa_jump_4.jsonl", "HuMoCon procedural motion-QA"]
    assert index["results"][0]["metrics"][0]["value"] == 1.0
    assert f"fine-tuned from `{source.name}`" in card and str(tmp_path) not in card and "qa_jump_16.jsonl" in card
    assert "| `qa_jump_4.jsonl` (held out from the fine-tuning data) | 4 | 0.0% | 100.0% |" in card
    assert 'from_pretrained("your-org/ckpt-ft-qa_jump_16"' in card

    tuned = AutoModel.from_pretrained(out).eval()
    original = AutoModel.from_pretrained(source).eval()
    assert not any("lora" in k for k in tuned.state_dict())  # merged
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, original.state_dict()[k])]
    assert changed and all(not k.startswith(("motion_encoder", "video_encoder")) for k in changed)  # encoders frozen
    assert json.loads((out / "humocon_chat.json").read_text())["system_prompt"] == "Answer briefly."

    # `humocon push` takes the fine-tune's own card, with the repo id in its usage (it wrote a card without results).
    pushed = {}
    monkeypatch.setattr(hub, "push_to_hub", lambda model, repo_id, **kw: pushed.update(kw, repo_id=repo_id) or "ok")
    assert main(["push", "--model", str(out), "--repo-id", "me/jumps"]) == 0
    assert pushed["model_card"] == card.replace("your-org/ckpt-ft-qa_jump_16", "me/jumps")

    # Re-running the same command reuses the finished run; a killed run would resume from its last checkpoint.
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    assert json.loads((out / "finetune.json").read_text())["steps"] == 30


def meta_end(card: str) -> int:
    """The line index of the YAML header's closing '---'."""
    return card.splitlines().index("---", 1)


def test_the_budget_follows_the_data():
    """Epochs over the rows, capped by the recipe's steps: 199 rows no longer train 550 steps (22 epochs)."""
    from humocon_hf.finetune import plan_budget, replay_rows

    assert replay_rows(199, 0.3) == 85 and replay_rows(199, 0) == 0
    plan = plan_budget(199 + 85, 8, epochs=3, cap=550)
    assert (plan["steps_per_epoch"], plan["steps"], plan["epochs"], plan["capped_by_recipe"]) == (36, 108, 3.0, False)
    assert plan_budget(6000, 8, epochs=3, cap=550)["steps"] == 550 and plan_budget(6000, 8, cap=550)["capped_by_recipe"]
    assert plan_budget(199, 8, max_steps=60, cap=550)["steps"] == 60


@pytest.mark.parametrize("realism", [0.0, 1.0])
def test_replay_regenerates_the_checkpoints_own_questions(tmp_path, realism):
    """The replayed questions are the procedural benchmark's training questions, the held-out ones its test
    questions, regenerated motion by motion with the same parameters (so never a test question in training), on the
    motions it trained on (varied as its data.procedural_realism varied them)."""
    from humocon_hf.data import load_custom_qa
    from humocon_hf.data.procedural import generate_motion_qa
    from humocon_hf.finetune import write_procedural_qa

    params = {"num_train_motions": 8, "num_validation_motions": 2, "num_test_motions": 3, "questions_per_motion": 2,
              "extra_train_motions": 2, "seed": 5, "max_frames": 60, "procedural_realism": realism}
    bench = generate_motion_qa(num_motions=13, seed=5, questions_per_motion=2, cache_dir=tmp_path / "cache",
                               splits=(8 / 13, 2 / 13, 3 / 13), max_frames=60, extra_train_motions=2, realism=realism)
    for split, n in (("train", 7), ("test", 4)):
        rows = load_custom_qa(str(write_procedural_qa(tmp_path / f"p{split}", params, split, n, seed=0)))
        assert len(rows) == n
        known = {(r["id"], r["question"], r["answer"]) for r in bench[split]}
        assert {(r["id"], r["question"], r["answer"]) for r in rows} <= known
        assert all(Path(p).is_file() for p in rows["motion_path"])  # relative to the file, resolved by the loader
        trained = {r["id"]: r["motion_path"] for r in bench[split]}
        for row in rows:
            assert np.array_equal(np.load(row["motion_path"]), np.load(trained[row["id"]]))


def test_the_command_and_python_share_one_function_and_its_defaults(tmp_path, monkeypatch):
    """`humocon finetune` calls `humocon_hf.finetune.finetune` with the function's own defaults, and the README's
    Python example calls that function too: the same system prompt, LoRA dropout, budget, replay and chat settings."""
    import functools
    import inspect
    import re

    import humocon_hf.finetune as module

    signature = inspect.signature(module.finetune).parameters.items()
    expected = {k: p.default for k, p in signature if p.default is not inspect.Parameter.empty and k != "command"}
    calls = []

    @functools.wraps(module.finetune)  # the command's --help reads the defaults from the signature
    def recording(*args, **kwargs):
        calls.append(kwargs)
        return {"train_rows": 1, "steps": 1, "output_dir": "x"}

    monkeypatch.setattr(module, "finetune", recording)
    (tmp_path / "qa.jsonl").write_text("{}\n")
    assert main(["finetune", "--model", "m", "--data", str(tmp_path / "qa.jsonl")]) == 0
    (kwargs,) = calls
    kwargs.pop("command")
    assert kwargs.pop("overrides") in (None, {}) and expected.pop("overrides") is None
    assert kwargs == expected
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Fine-tuning a checkpoint on your QA data"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "from humocon_hf.finetune import finetune" in code and "InstructionTuningTrainer(" not in code


def test_finetune_errors_name_the_input(tmp_path, capsys):
    assert main(["finetune", "--model", str(tmp_path / "nope"), "--data", str(tmp_path / "qa.jsonl")]) == 2
    assert "--data" in capsys.readouterr().err
    (tmp_path / "qa.jsonl").write_text("")
    assert main(["finetune", "--model", str(tmp_path / "nope"), "--data", str(tmp_path / "qa.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "qa.jsonl" in err or "no such folder" in err
    for flag, value in (("--replay", "1"), ("--epochs", "0"), ("--max-steps", "0"), ("--old-questions", "-1")):
        assert main(["finetune", "--model", "m", "--data", str(tmp_path / "qa.jsonl"), flag, value]) == 2
        assert flag in capsys.readouterr().err


def test_readme_finetune_snippet_runs(tmp_path, smollm2_tokenizer_dir):
    """The README's Python fine-tuning example, run as written on the tiny checkpoint (paths swapped): it trains with
    the command's defaults and writes the chat settings `humocon ask` reads, the licence from the base card."""
    import re
    from pathlib import Path

    from conftest import parse_card_metadata
    from transformers import AutoModel

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Fine-tuning a checkpoint on your QA data"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    source = build_tiny_checkpoint(tmp_path, smollm2_tokenizer_dir)
    _with_card(source, license="apache-2.0")
    motion = write_motion_file(tmp_path)
    data, held_out = _qa_file(tmp_path, motion, "jump", 4), _qa_file(tmp_path, motion, "jump", 1)
    code = (code.replace('"humocon_demo"', repr(str(source))).replace('"my_qa.jsonl"', repr(data))
            .replace('"my_qa_test.jsonl"', repr(held_out)).replace('"runs/ft"', repr(str(tmp_path / "ft"))))
    exec(compile(code, "README.md", "exec"), {})
    out = tmp_path / "ft"
    assert type(AutoModel.from_pretrained(out)).__name__ == "HuMoConForCausalLM"
    # The chat settings the checkpoint was tuned with, as the command writes them (the demo's: an empty system prompt).
    assert json.loads((out / "humocon_chat.json").read_text()) == {"system_prompt": "Answer briefly.",
                                                                   "max_new_tokens": 4, "bf16": True}
    info = json.loads((out / "finetune.json").read_text())
    assert info["lora_dropout"] == 0.0 and info["system_prompt"] == "Answer briefly."  # the small recipe's dropout
    assert (info["plan"]["rows"], info["replay_rows"], info["steps"]) == (6, 2, 3)  # 3 epochs of one batch
    assert info["procedural_after"]["questions"] == 48
    assert parse_card_metadata((out / "README.md").read_text())["license"] == "apache-2.0"  # the base's


def test_cmu_speed_example_writes_a_custom_qa_file_the_loader_reads(shared_data, tmp_path):
    """examples/cmu_speed_qa.py (the README's fine-tuning example on real mocap): every answer in both files, no trial
    in both, and load_custom_qa reads what it wrote."""
    import importlib.util
    from pathlib import Path

    from humocon_hf.data.loaders import load_custom_qa

    path = Path(__file__).resolve().parents[1] / "examples" / "cmu_speed_qa.py"
    spec = importlib.util.spec_from_file_location("cmu_speed_qa", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["--cmu-dir", str(shared_data / "cmu_bvh"), "--descriptions",
                  str(shared_data / "cmu_index" / "CMU_data.csv"), "--out", str(tmp_path)])
    train, held = load_custom_qa(str(tmp_path / "train.jsonl")), load_custom_qa(str(tmp_path / "heldout.jsonl"))
    answers = lambda ds: {c[-1]["content"] for c in ds["conversations"]}  # noqa: E731
    assert answers(train) == answers(held) == {"slow", "normal", "fast"}
    assert not set(train["motion_path"]) & set(held["motion_path"])
    assert "09_01" in " ".join(held["motion_path"])  # a run: CMU's "run" is answered "fast"
