"""Model cards: rendered from given results only, metadata that parses back, usage and licence sections."""

import json
import re
from pathlib import Path

import pytest
from conftest import parse_card_metadata, run_without_the_package
from humocon_tiny import build_tiny_checkpoint, walk_rotations, write_synthetic_bvh

from humocon_hf.model_card import (
    TEMPLATE_PATH,
    card_from_output_dir,
    render_model_card,
    results_table,
)
from humocon_hf.recipes import load_recipe

REPO_ROOT = Path(__file__).resolve().parents[1]


def _results(name, accuracy, action, direction, body_part, before, after, other, total):
    return {
        "task": "motion-qa",
        "model_name": name,
        "dataset": {"name": "HuMoCon procedural motion-QA", "type": "humocon-procedural-qa", "split": "test",
                    "num_examples": total},
        "metrics": {"accuracy": accuracy, "action": action, "direction": direction, "body_part": body_part,
                    "before": before, "after": after, "other": other,
                    "counts": {"total": total, "action": 20, "direction": 12, "body_part": 8}},
    }


MODEL = _results("HuMoCon", 0.5625, 0.65, 0.5, 0.375, 0.55, 0.6, 0.52, 40)
BASELINE = _results("Text-only", 0.3125, 0.35, 0.25, 0.25, 0.3, 0.35, 0.3, 40)


def test_model_index_parses_back_with_the_given_numbers():
    card = render_model_card(MODEL, baseline_results=BASELINE, recipe=load_recipe("small"),
                             command="humocon demo --seed 3", stage_times={"pretrain": 61.0, "tune": 300.4},
                             model_name="humocon-demo", datasets_used=["humocon-procedural-motion-qa", "cmu-mocap"])
    meta = parse_card_metadata(card)
    assert meta["library_name"] == "transformers"
    assert meta["license"] == "apache-2.0"
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    # Only Hub data set ids go into `datasets` (ours are described in the card's body); no video pipeline tag for a
    # checkpoint whose LLM was never tuned on videos.
    assert "humocon" in meta["tags"] and "datasets" not in meta
    assert "pipeline_tag" not in meta and "video-understanding" not in meta["tags"]
    assert "CMU Graphics Lab" in card
    video = parse_card_metadata(render_model_card(MODEL, recipe=load_recipe("small"), video_qa=True,
                                                  datasets_used=["humocon-procedural-motion-qa", "org/my-motion-qa"]))
    assert video["pipeline_tag"] == "video-text-to-text" and "video-understanding" in video["tags"]
    assert video["datasets"] == ["org/my-motion-qa"]
    (entry,) = meta["model-index"]
    assert entry["name"] == "humocon-demo"
    (result,) = entry["results"]
    assert result["dataset"]["split"] == "test"
    values = {m["name"]: m["value"] for m in result["metrics"]}
    assert values["Overall accuracy"] == pytest.approx(0.5625)
    assert values["Body part accuracy"] == pytest.approx(0.375)
    # The baseline is shown in the table, never claimed in the model-index.
    assert 0.3125 not in values.values()


def test_card_body_has_usage_training_table_limitations_and_citations():
    card = render_model_card(MODEL, baseline_results=BASELINE, recipe=load_recipe("small"),
                             command="humocon demo --seed 3", stage_times={"pretrain": 61.0, "tune": 300.4},
                             repo_id="org/humocon-demo", datasets_used=["humocon-procedural-motion-qa", "cmu-mocap"])
    for needle in ("AutoModel.from_pretrained(\"org/humocon-demo\")", "AutoProcessor.from_pretrained",
                   "apply_chat_template", "humocon demo --seed 3", "## Limitations", "LoRA rank 8", "300 s",
                   "fang2025humocon", "NSF EIA-0196217", "BABEL", "HumanML3D", "KIT-ML", "non-commercial"):
        assert needle in card, needle
    # The usage snippet's conversation has the system message the model was tuned with, an empty one included (with
    # none, SmolLM2's template would put in its own default).
    for prompt in ("", "Answer briefly."):
        card_with = render_model_card(MODEL, recipe=load_recipe("small", overrides={"model": {"system_prompt": prompt}}))
        assert '{"role": "system", "content": ' + json.dumps(prompt) + "}" in card_with
    no_system = render_model_card(MODEL, recipe=load_recipe("small", overrides={"model": {"system_prompt": None}}))
    assert '"role": "system"' not in no_system
    # The training table says what stage 3 trained, as the recipe set it.
    assert "LoRA rank 8 on the LLM + the projectors" in card
    frozen = render_model_card(MODEL, recipe=load_recipe("small", overrides={"tune": {"train_projectors": False}}))
    assert "LoRA rank 8 on the LLM |" in frozen and "+ the projectors" not in frozen
    # Which motion features the LLM reads, as the recipe set them.
    assert ("| Motion features read by the LLM | the encoder's continuous features (before the codebook), with each "
            "token's own normalised pose frames beside them (`motion_projector_reads_poses`) |") in card
    paper_like = render_model_card(MODEL, recipe=load_recipe("small", overrides={
        "model": {"motion_projector_reads_poses": False}}))
    assert "| Motion features read by the LLM | the encoder's continuous features (before the codebook) |" in paper_like
    quantised = render_model_card(MODEL, recipe=load_recipe("small", overrides={
        "model": {"use_motion_quantized": True, "motion_projector_reads_poses": False}}))
    assert "| Motion features read by the LLM | the codebook's concept vectors |" in quantised
    with_poses = render_model_card(MODEL, recipe=load_recipe("small", overrides={
        "model": {"use_motion_quantized": True, "motion_projector_reads_poses": True}}))
    assert ("| Motion features read by the LLM | the codebook's concept vectors, with each token's own normalised pose "
            "frames beside them (`motion_projector_reads_poses`) |") in with_poses
    # Measured numbers appear as given, with the difference to the baseline.
    assert "| 0.562 |" in card and "| 0.312 |" in card and "+0.250" in card


def test_no_results_means_no_numbers():
    card = render_model_card(None, model_name="untrained")
    assert "model-index" not in parse_card_metadata(card)
    assert "No evaluation results were recorded" in card
    assert "CMU" not in card.split("## Citation")[1]


def test_bad_results_are_rejected():
    with pytest.raises(ValueError, match="metrics"):
        render_model_card({"accuracy": 0.5})
    bad = dict(MODEL, metrics={"accuracy": "high"})
    with pytest.raises(ValueError, match="accuracy"):
        render_model_card(bad)


def test_results_table_drops_empty_columns():
    only = _results("m", 0.5, 0.5, None, None, 0.5, None, None, 4)
    table = results_table(only)
    assert "Direction" not in table and "Action" in table and "Difference" not in table


def test_template_ships_inside_the_package_and_model_cards_points_to_it():
    assert TEMPLATE_PATH.is_file()
    assert TEMPLATE_PATH.parent.parent.name == "humocon_hf"
    linked = REPO_ROOT / "model_cards" / "README.md.jinja"
    assert linked.exists() and linked.resolve() == TEMPLATE_PATH.resolve()


def test_card_from_output_dir_reads_results(tmp_path):
    import json

    (tmp_path / "stages" / "evaluate").mkdir(parents=True)
    (tmp_path / "stages" / "evaluate" / "model.json").write_text(json.dumps(MODEL))
    (tmp_path / "results.json").write_text(json.dumps({
        "command": "humocon demo", "recipe": load_recipe("small").to_dict(),
        "wall_time_s": {"tune": 12.0, "total_this_run": 20.0}, "stages": {"data": {"cmu_trials": 3}},
    }))
    card = card_from_output_dir(tmp_path, repo_id="org/x")
    meta = parse_card_metadata(card)
    assert meta["model-index"][0]["name"] == "x" and "CMU Graphics Lab" in card
    with pytest.raises(FileNotFoundError, match="humocon demo"):
        card_from_output_dir(tmp_path / "nothing")


@pytest.mark.parametrize("use_video", [False, True])
def test_training_table_says_what_phase_2_trained_on(use_video):
    recipe = load_recipe("small").with_overrides({"pretrain": {"use_video": use_video}})
    card = render_model_card(MODEL, recipe=recipe, model_name="humocon-demo")
    phase2 = next(line for line in card.splitlines() if line.startswith("| 1. concept discovery, phase 2"))
    assert ("rendered videos" in phase2) is use_video
    assert ("all four objectives" in phase2) is use_video


def _python_blocks(card: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", card, flags=re.S)


def test_first_usage_snippet_runs_with_only_torch_and_transformers(smollm2_tokenizer_dir, tmp_path):
    """A Hub visitor cannot `pip install humocon-hf` (issue 30: the card's snippet began with `import humocon_hf`): the
    card's first snippet loads the exported checkpoint through its own code and answers, with humocon_hf blocked."""
    checkpoint = build_tiny_checkpoint(tmp_path / "build", smollm2_tokenizer_dir)
    card = render_model_card(MODEL, recipe=load_recipe("small"), repo_id=str(checkpoint))
    first, second = _python_blocks(card)[:2]
    assert "import humocon_hf" not in first and "trust_remote_code=True" in first
    assert second.startswith("import humocon_hf")
    run = tmp_path / "visitor"
    run.mkdir()
    write_synthetic_bvh(run / "walk.bvh", *walk_rotations(40))  # the file the snippet names
    check = ("\nassert type(model).__module__.startswith('transformers_modules'), type(model).__module__\n"
             "assert not any(m.split('.')[0] == 'humocon_hf' for m in sys.modules)\n"
             "assert output.shape[1] > inputs['input_ids'].shape[1]\nprint('ANSWERED')\n")
    assert "ANSWERED" in run_without_the_package(first + check, run, timeout=600).stdout
    blocked = run_without_the_package(second, run, check=False)
    assert "No module named 'humocon_hf'" in blocked.stderr  # the isolation holds: the second snippet needs the package


def test_card_shows_the_preview_and_the_concept_timeline_when_present(tmp_path):
    plain = render_model_card(MODEL, recipe=load_recipe("small"))
    assert "## A test motion" not in plain and ".gif" not in plain
    card = render_model_card(MODEL, recipe=load_recipe("small"), media={
        "preview": "preview.gif", "concept_timeline": "concept_timeline.png", "caption": "A person walks."})
    assert "](preview.gif)" in card and "](concept_timeline.png)" in card and '"A person walks."' in card
    assert "blue: the person's left side" in card
    (tmp_path / "stages" / "evaluate").mkdir(parents=True)
    (tmp_path / "stages" / "evaluate" / "model.json").write_text(json.dumps(MODEL))
    (tmp_path / "results.json").write_text(json.dumps({"recipe": load_recipe("small").to_dict(), "stages": {
        "export": {"preview_caption": "A person jumps."}}}))
    (tmp_path / "preview.gif").write_bytes(b"GIF89a")
    from_folder = card_from_output_dir(tmp_path, repo_id="org/x")
    assert "](preview.gif)" in from_folder and "concept_timeline.png" not in from_folder and "A person jumps." in from_folder


def test_limitations_say_rigs_are_mapped_by_topology():
    card = render_model_card(MODEL, recipe=load_recipe("small"))
    assert "mapped by joint names" not in card
    assert "by\n  their topology" in card or "by their topology" in card
    assert "humocon inspect" in card


def test_real_cmu_line_gives_the_count_and_a_confidence_interval():
    """13 of 13 trials is "100%" with a 95% CI of 77-100%, not a bare "100%" (issue 30)."""
    summary = {
        "question": "What is the person doing?", "trials": [f"t{i}" for i in range(13)], "accuracy": 1.0,
        "baseline_accuracy": 10 / 13, "majority_answer": "walk", "majority_accuracy": 10 / 13,
        "per_action": {"jump": {"questions": 3, "correct_per_seed": [3]}, "walk": {"questions": 10,
                                                                                  "correct_per_seed": [10]}},
        "statistics": {"model": {"mean": 1.0, "std": 0.0, "low": 1.0, "high": 1.0, "n_seeds": 1, "n_questions": 13}},
    }
    card = " ".join(render_model_card(MODEL, recipe=load_recipe("small"), real_cmu=summary).split())
    assert "**100.0%** of 13 trials, 13 of 13 right, 95% CI 77-100% (Wilson" in card
    assert "jump 3/3, walk 10/10" in card
