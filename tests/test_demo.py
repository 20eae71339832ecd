"""`humocon demo`: stage reuse, the summary table, the prompt format, and one tiny end-to-end run (slow)."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from humocon_hf.pipeline.reporting import format_summary_table
from humocon_hf.pipeline.runner import StageRunner
from humocon_hf.processing.chat_template import typed_chat_template


def test_stage_runner_reuses_finished_stages_and_redoes_changed_ones(tmp_path, capsys):
    calls = []

    def stage(folder: Path) -> dict:
        calls.append(folder.name)
        (folder / "out.txt").write_text("done")
        return {"n": len(calls)}

    runner = StageRunner(tmp_path)
    assert runner.run("a", {"recipe": 1}, stage) == {"n": 1}
    assert runner.records["a"].reused is False and runner.records["a"].cpu_time_s is not None
    again = StageRunner(tmp_path)
    assert again.run("a", {"recipe": 1}, stage) == {"n": 1}
    assert again.records["a"].reused is True and calls == ["a"]
    assert "reusing" in capsys.readouterr().out
    # Changed inputs: the stage is redone from an empty folder.
    (tmp_path / "stages" / "a" / "stale.txt").write_text("old")
    assert StageRunner(tmp_path).run("a", {"recipe": 2}, stage) == {"n": 2}
    assert not (tmp_path / "stages" / "a" / "stale.txt").exists()
    # --fresh ignores the marker.
    assert StageRunner(tmp_path, fresh=True).run("a", {"recipe": 2}, stage) == {"n": 3}


def test_interrupted_stage_leaves_no_marker(tmp_path):
    def broken(folder):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        StageRunner(tmp_path).run("b", {}, broken)
    assert not (tmp_path / "stages" / "b" / "stage.json").exists()


def test_summary_table_shows_both_rows_and_the_difference():
    metrics = {
        "model": {"accuracy": 0.6, "action": 0.7, "direction": 0.5, "body_part": None, "before": 0.55, "after": 0.6,
                  "other": 0.62, "counts": {"total": 50, "action": 30, "direction": 20}},
        "baseline": {"accuracy": 0.4, "action": 0.35, "direction": 0.5, "body_part": None, "before": 0.4,
                     "after": 0.38, "other": 0.42},
    }
    table = format_summary_table(metrics)
    lines = table.splitlines()
    assert "Body part" not in lines[0]  # no body-part questions: no column
    assert "60.0%" in lines[2] and "40.0%" in lines[3]
    assert "+20.0" in lines[4] and "+35.0" in lines[4] and "+0.0" in lines[4]
    assert lines[5].split("|")[1].strip() == "50"


def test_typed_chat_template_renders_like_the_llm_template(smollm2_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)
    typed = typed_chat_template(tokenizer.chat_template)
    assert typed is not None and "item['type']" in typed
    flat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "<motion>\nWhat?"},
            {"role": "assistant", "content": "walk"}]
    items = [{"role": "system", "content": "Be brief."},
             {"role": "user", "content": [{"type": "motion"}, {"type": "text", "text": "\nWhat?"}]},
             {"role": "assistant", "content": "walk"}]
    expected = tokenizer.apply_chat_template(flat, tokenize=False)
    assert tokenizer.apply_chat_template(items, chat_template=typed, tokenize=False) == expected
    assert typed_chat_template(typed) == typed  # already typed: unchanged
    assert typed_chat_template(None) is None


def test_typed_chat_template_does_not_run_code_from_a_hostile_template(tmp_path):
    """A tokenizer folder is untrusted: its template must not reach Python internals (sandboxed like transformers)."""
    marker = tmp_path / "pwned"
    hostile = ("{% for message in messages %}{{ message['content'] }}"
               "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}{% endfor %}")
    with pytest.raises(ValueError, match="unsafe"):
        typed_chat_template(hostile)
    assert not marker.exists()


def test_model_card_template_is_sandboxed(tmp_path):
    from humocon_hf.model_card import render_model_card

    marker = tmp_path / "pwned"
    template = tmp_path / "card.jinja"
    template.write_text("{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}")
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        render_model_card(template_path=template)
    assert not marker.exists()


@pytest.mark.slow
def test_tiny_demo_end_to_end_then_resume(tmp_path, smollm2_tokenizer_dir, capsys):
    """The whole pipeline with a 1-layer LLM and a handful of steps: every output is written and loadable, the
    numbers in results.json / README come from the run, and a re-run reuses every stage."""
    import imageio.v2 as imageio
    from conftest import parse_card_metadata
    from humocon_tiny import make_tiny_llm_dir
    from transformers import AutoModel, AutoProcessor

    from humocon_hf.demo import STAGES, run_demo

    llm_dir = make_tiny_llm_dir(tmp_path, smollm2_tokenizer_dir)
    bandai = _small_bandai_copy(tmp_path / "bandai", ["walk-back_normal_001", "bow_happy_001", "bye_sad_001"])
    cmu = _small_cmu_copy(tmp_path / "cmu", ["09_01", "02_01", "02_04"])
    hdm05 = _small_hdm05_copy(tmp_path / "hdm05", ["bd_kickLFront1Reps", "bd_jogLeftCircle4StepsRstart",
                                                    "dg_grabHighR"])
    overrides = {
        "model": {"llm_name_or_path": str(llm_dir), "codebook_size": 16},
        "data": {"num_train_motions": 8, "extra_train_motions": 0, "num_validation_motions": 2, "num_test_motions": 3,
                 "questions_per_motion": 2, "max_frames": 64, "cmu_bvh_dir": str(cmu / "cmu_bvh"),
                 "cmu_holdout_subjects": [2], "bandai_dir": str(bandai), "bandai_holdout_styles": ["sad"],
                 "hdm05_dir": str(hdm05), "hdm05_holdout_actors": ["dg"], "vocabulary_clips_per_kind": 1,
                 "real_sequences": 4},
        "pretrain": {"phase1_max_steps": 2, "phase2_max_steps": 1, "per_device_train_batch_size": 4,
                     "logging_steps": 1},
        "translate": {"max_steps": 2, "per_device_train_batch_size": 2, "bf16": False, "logging_steps": 1},
        "tune": {"max_steps": 2, "per_device_train_batch_size": 2, "bf16": False, "logging_steps": 1},
        "evaluate": {"batch_size": 4, "max_new_tokens": 3, "num_examples": 2},
    }
    out = tmp_path / "demo"
    results = run_demo(output_dir=str(out), overrides=overrides, command="humocon demo (test)")
    printed = capsys.readouterr().out
    # The small recipe's baseline: the question prior, counted from stage 3's questions (no stage of its own).
    assert "Held-out accuracy" in printed and "Question prior (question only)" in printed
    assert "baseline" not in results["stages"] and results["baseline_name"] == "Question prior (question only)"
    assert (out / "stages" / "evaluate" / "question_prior.json").is_file()

    saved = json.loads((out / "results.json").read_text())
    assert saved["metrics"] == results["metrics"]
    n_test = results["stages"]["data"]["splits"]["test"]
    for key in ("model", "baseline"):
        metrics = results["metrics"][key]
        assert 0.0 <= metrics["accuracy"] <= 1.0
        assert metrics["counts"]["total"] == n_test
    assert set(results["wall_time_s"]) == set(STAGES) - {"baseline"} | {"total_this_run"}
    assert results["stages"]["tune"]["steps"] == 2
    # The small recipe's stage 1 runs all four objectives of the paper (phase 2 on motions + rendered videos).
    objectives = results["stages"]["pretrain"]["phase2"]["objectives"]
    assert {"loss_rec_motion", "loss_rec_video", "loss_dis", "loss_velocity", "loss_align"} <= set(objectives)
    assert all(np.isfinite(v).all() for v in objectives.values())
    # Real takes (and their mirror twins): stage-1 motions, captions, and the questions their facts answer, for the
    # model and the baseline; Bandai's "sad" style, HDM05's actor dg and CMU's subject 2 are held out of every stage.
    data_info = results["stages"]["data"]
    assert data_info["real_takes"] == {"bandai": 2, "hdm05": 2}
    assert data_info["real_heldout_takes"] == {"bandai": 1, "cmu": 2, "hdm05": 1}
    assert data_info["bandai_takes"] == 4 and data_info["hdm05_clips"] == 4
    assert data_info["cmu_trials"] == 2 and data_info["cmu_heldout_trials"] == 2
    assert results["stages"]["tune"]["real_questions"] > 20
    # The real lines: per held-out data set, trained phrasings and paraphrases, and the option questions' compliance.
    lines = results["real_lines"]
    assert set(lines["datasets"]) == {"hdm05", "bandai", "cmu", "all"}
    assert lines["datasets"]["hdm05"]["clips"] == 1 and lines["option_questions"] > 0
    assert 0.0 <= lines["options_compliance"] <= 1.0
    assert "HDM05 (held-out actors), 1 clips" in printed and saved["real_lines"] == json.loads(json.dumps(lines))
    # The procedural vocabulary clips (raise, both hands, turn): trained on, and their held-out line apart from the real.
    assert data_info["vocabulary_clips"] == data_info["vocabulary_heldout_clips"] == 8
    vocabulary = results["vocabulary_line"]
    assert set(vocabulary["datasets"]) == {"vocabulary", "all"} and vocabulary["option_questions"] > 0
    assert "Procedural vocabulary clips, held out" in printed and "vocabulary" not in lines["datasets"]
    # Real takes in sequence: before / after / in-between questions in stage 3, and their own held-out line.
    assert data_info["sequences_train_questions"] > 0 and data_info["sequences_heldout_questions"] > 0
    assert results["stages"]["tune"]["real_questions"] > data_info["sequences_train_questions"]
    assert set(results["sequences_line"]["datasets"]) == {"sequences", "all"}
    assert "Real takes in sequence (before / after / in between), held out" in printed
    # The machine reference measured as stage 3 began, and stage 3's achieved model FLOP/s as a fraction of it.
    assert saved["machine_reference"]["name"] == "gemm_llm_shapes_v1"
    assert saved["machine_reference"] == results["stages"]["tune"]["machine_reference"]
    tune = results["stages"]["tune"]
    assert tune["batches"] == 2 and tune["model_flops"] > 0 and tune["achieved_gflops"] > 0
    assert all(f is None or f > 0 for per_thread in saved["tune_fraction_of_reference"].values() for f in per_thread.values())
    assert "Machine reference (gemm_llm_shapes_v1" in printed and "Stage 3 achieved" in printed
    # ... and against the thread counts its steps ran on, each measured by the reference, weighted by their seconds.
    assert saved["tune_seconds_by_threads"] and set(saved["tune_seconds_by_threads"]) <= set(
        saved["machine_reference"]["gflops"]["bfloat16"])
    assert saved["tune_fraction_of_threads_used"]["bfloat16"] > 0
    assert "of the bf16 rate of the threads it ran on" in printed
    # ... and answered as their own line / column: "What is the person doing?" about 02_01 (walk), 02_04 (jump).
    real = results["real_cmu"]
    assert real["trials"] == ["02_01", "02_04"] and real["question"] == "What is the person doing?"
    assert set(real["per_action"]) == {"walk", "jump"} and real["majority_accuracy"] == 0.5
    assert 0.0 <= real["accuracy"] <= 1.0 and real["baseline_accuracy"] is not None
    assert results["statistics"]["real_cmu"]["model"]["n_questions"] == 2
    assert "Real CMU mocap, held-out subjects (2 trials" in printed and "Real CMU (held-out subjects)" in printed
    assert saved["real_cmu"]["accuracy"] == real["accuracy"]
    assert "On **real motion capture** of people it never saw" in (out / "README.md").read_text()
    assert "Bandai Namco" in (out / "README.md").read_text()
    # ... and the held-out lines beside the real ones (vocabulary clips, takes in sequence), each its own table
    card = (out / "README.md").read_text()
    assert "| Procedural vocabulary clips, held out |" in card
    assert "| Real takes in sequence (before / after / in between), held out |" in card
    assert len(results["examples"]) == 2

    model = AutoModel.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    assert type(model).__name__ == "HuMoConForCausalLM" and type(processor).__name__ == "MotionVideoProcessor"
    assert model.config.motion_config.codebook_size == 16
    # The concepts in words: measured on the training motions, stored in the config and in concepts.json, shown by
    # `humocon ask --concepts` (here on a real CMU trial).
    words = model.config.motion_config.concept_descriptions
    described = json.loads((out / "concepts.json").read_text())
    assert words and set(words) == set(described) and results["stages"]["export"]["concepts_described"] == len(words)
    assert all(v["description"] == words[k] for k, v in described.items())
    from humocon_hf.cli import main

    capsys.readouterr()
    assert main(["ask", "--model", str(out), "--motion", str(cmu / "cmu_bvh" / "09_01.bvh"), "--concepts"]) == 0
    shown = capsys.readouterr().out
    assert "Motion concepts" in shown
    # Each segment shows its concept's stored words, with what the concept leaves open ("one arm", "maybe
    # travelling") filled in from the segment itself.
    described_lines = [re.match(r"\s+\S.*?#(\d+)\s+(\S.*)$", line) for line in shown.splitlines()[1:]]
    assert any(described_lines)
    for match in filter(None, described_lines):
        stored = words[match.group(1)]
        assert match.group(2) == stored or any(o in stored for o in ("one ", "maybe travelling")), (match.group(0), stored)

    meta = parse_card_metadata((out / "README.md").read_text())
    values = {m["name"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert values["Overall accuracy"] == pytest.approx(round(results["metrics"]["model"]["accuracy"], 4))
    assert "humocon demo (test)" in (out / "README.md").read_text()

    gif = imageio.mimread(out / "preview.gif")
    assert len(gif) > 1 and np.asarray(gif[0]).ndim == 3
    assert (out / "concept_timeline.png").stat().st_size > 1000
    chat = json.loads((out / "humocon_chat.json").read_text())
    assert chat["max_new_tokens"] == 3 and chat["bf16"] is False  # as the tune stage ran (bf16 off above)

    # The encoder probe reads the same folder.
    probe = _load_probe_script().main([str(out)])
    assert set(probe) <= {"action", "body_part", "side"} and "action" in probe
    assert all(0.0 <= row[k] <= 1.0 for row in probe.values() for k in ("input", "continuous", "quantised"))

    # Re-run: everything is reused.
    again = run_demo(output_dir=str(out), overrides=overrides)
    assert set(again["reused_stages"]) == set(STAGES) - {"baseline"}
    assert again["metrics"] == results["metrics"]

    # A changed stage-3 budget redoes tuning and what depends on it, nothing before.
    overrides["tune"]["max_steps"] = 3
    third = run_demo(output_dir=str(out), overrides=overrides)
    assert set(third["reused_stages"]) == {"data", "pretrain", "translate"}
    assert third["stages"]["tune"]["steps"] == 3


def _shared_source(name: str):
    """A folder of ../shared/data (the test skips without it)."""
    from conftest import SHARED_DATA

    source = SHARED_DATA / name
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    return source


def _small_bandai_copy(folder, takes):
    """A few real Bandai Namco takes in the data set's layout (data/*.bvh + *.json, cfg/), linked from ../shared."""
    source = _shared_source("bandai_namco_1")
    (folder / "data").mkdir(parents=True)
    (folder / "cfg").symlink_to(source / "cfg")
    for take in takes:
        for ext in (".bvh", ".json"):
            (folder / "data" / f"dataset-1_{take}{ext}").symlink_to(source / "data" / f"dataset-1_{take}{ext}")
    return folder


def _small_hdm05_copy(folder, clips):
    """A few real HDM05 ASF/AMC clips (their first take) with their actors' skeletons, linked from ../shared."""
    source = _shared_source("hdm05_train")
    folder.mkdir(parents=True)
    for clip in clips:
        actor = clip.split("_")[0]
        first = sorted(source.glob(f"HDM_{clip}_*_120.amc"))[0]
        (folder / first.name).symlink_to(first)
        if not (folder / f"HDM_{actor}.asf").exists():
            (folder / f"HDM_{actor}.asf").symlink_to(source / f"HDM_{actor}.asf")
    return folder


def _small_cmu_copy(folder, trials):
    """A few real CMU trials (cmu_bvh/*.bvh) with the descriptions CSV beside them (cmu_index/), linked from ../shared."""
    source = _shared_source("cmu_bvh")
    (folder / "cmu_bvh").mkdir(parents=True)
    (folder / "cmu_index").symlink_to(source.parent / "cmu_index")
    for trial in trials:
        (folder / "cmu_bvh" / f"{trial}.bvh").symlink_to(source / f"{trial}.bvh")
    return folder


def test_variant_folder_names():
    from humocon_hf.pipeline.ablation import variant_folder

    assert variant_folder("full") == "full"
    assert variant_folder("w/o masked reconstruction") == "wo_masked_reconstruction"
    assert variant_folder("w/o velocity reconstruction") == "wo_velocity_reconstruction"


@pytest.mark.slow
def test_tiny_ablation_trains_each_variant_with_its_objectives(tmp_path, smollm2_tokenizer_dir, capsys):
    """`humocon ablate` on a tiny recipe: one pipeline per variant, the removed objective really absent from that
    variant's stage-1 losses (the small recipe pre-trains on rendered videos, so alignment can be removed), the table
    and JSON written, a re-run reused; without video the alignment variant is left out with a note."""
    from humocon_tiny import make_tiny_llm_dir

    from humocon_hf.cli import main

    llm_dir = make_tiny_llm_dir(tmp_path, smollm2_tokenizer_dir)
    out = tmp_path / "ablation"
    args = [
        "ablate", "--output-dir", str(out), "--no-cmu", "--variants", "full", "w/o alignment",
        "--override", f"model.llm_name_or_path={llm_dir}", "--override", "model.codebook_size=16",
        "--override", "data.num_train_motions=6", "--override", "data.extra_train_motions=0", "--override", "data.num_validation_motions=2",
        "--override", "data.num_test_motions=3", "--override", "data.questions_per_motion=2",
        "--override", "data.vocabulary_clips_per_kind=0", "--override", "data.real_sequences=0",
        "--override", "data.max_frames=64",
        "--override", "pretrain.phase1_max_steps=1", "--override", "pretrain.phase2_max_steps=2",
        "--override", "pretrain.per_device_train_batch_size=4", "--override", "pretrain.logging_steps=1",
        "--override", "translate.max_steps=1", "--override", "translate.per_device_train_batch_size=2",
        "--override", "translate.bf16=false", "--override", "tune.max_steps=1",
        "--override", "tune.per_device_train_batch_size=2", "--override", "tune.bf16=false",
        "--override", "evaluate.batch_size=4", "--override", "evaluate.max_new_tokens=2",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Variant" in printed

    results = json.loads((out / "ablation.json").read_text())
    assert list(results) == ["full", "question prior (no motion)", "w/o alignment"]
    table = (out / "ablation_table.md").read_text()
    assert "full" in table and "w/o alignment" in table
    for name, res in results.items():
        assert 0.0 <= res["metrics"]["accuracy"] <= 1.0 and res["model_name"] == name

    def phase2_losses(folder: str) -> set[str]:
        states = sorted((out / folder / "stages" / "pretrain").rglob("trainer_state.json"))
        logged = set()
        for state in states:
            for entry in json.loads(state.read_text())["log_history"]:
                logged |= {k for k in entry if k.startswith("loss_")}
        return logged

    assert {"loss_align", "loss_velocity", "loss_dis", "loss_rec_motion"} <= phase2_losses("full")
    assert "loss_align" not in phase2_losses("wo_alignment")
    assert {"loss_velocity", "loss_dis", "loss_rec_video"} <= phase2_losses("wo_alignment")
    assert "baseline" in json.loads((out / "full" / "results.json").read_text())["metrics"]  # the baseline row
    assert "baseline" not in json.loads((out / "wo_alignment" / "results.json").read_text())["metrics"]

    # Re-run: both variants reused, same numbers.
    assert main(args) == 0
    assert "reusing" in capsys.readouterr().out
    assert json.loads((out / "ablation.json").read_text()) == results

    # Without video there is no alignment objective to remove: the variant is left out, saying how to get it.
    assert args[5:7] == ["full", "w/o alignment"]
    no_video = ["ablate", "--output-dir", str(tmp_path / "novideo"), "--no-cmu", "--variants", "w/o alignment",
                *args[7:], "--override", "pretrain.use_video=false"]
    assert main(no_video) == 2
    captured = capsys.readouterr()
    assert "leaving out 'w/o alignment'" in captured.out and "pretrain.use_video=true" in captured.out


def test_stage1_weights_do_not_depend_on_what_the_process_did_before(tmp_path, smollm2_tokenizer_dir, monkeypatch):
    """A first run converts the GGUF LLM in the data stage (which draws random numbers) before stage 1; a re-run
    finds it cached. Both must train the same encoder, or demo numbers could not be reproduced."""
    import torch
    from humocon_tiny import make_tiny_llm_dir
    from safetensors.torch import load_file

    import humocon_hf.pipeline.stages as stages
    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions

    build_processor = stages.build_processor
    draws = {"n": 0}

    def build_processor_drawing_random_numbers(*args, **kwargs):
        torch.randn(draws["n"])
        return build_processor(*args, **kwargs)

    monkeypatch.setattr(stages, "build_processor", build_processor_drawing_random_numbers)

    llm_dir = make_tiny_llm_dir(tmp_path, smollm2_tokenizer_dir)
    overrides = {
        "model": {"llm_name_or_path": str(llm_dir), "codebook_size": 16},
        "data": {"num_train_motions": 8, "extra_train_motions": 0, "num_validation_motions": 2, "num_test_motions": 2, "questions_per_motion": 1, "vocabulary_clips_per_kind": 0, "real_sequences": 0,
                 "max_frames": 64, "cmu_bvh_dir": None,
                 "bandai_dir": None, "hdm05_dir": None},
        "pretrain": {"phase1_max_steps": 2, "phase2_max_steps": 1, "per_device_train_batch_size": 4},
    }
    weights = []
    for name, n in (("a", 0), ("b", 1000)):
        draws["n"] = n
        out = tmp_path / name
        HuMoConPipeline(PipelineOptions(output_dir=str(out), overrides=overrides, use_cmu=False)).run(until="pretrain")
        weights.append(load_file(out / "stages" / "pretrain" / "motion_encoder" / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], rtol=0, atol=0, msg=key)


def _load_probe_script():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "probe_motion_encoder.py"
    spec = importlib.util.spec_from_file_location("probe_motion_encoder", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_probe_accuracy_separates_what_is_linearly_separable_and_not_noise():
    import torch

    probe = _load_probe_script()
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (600,), generator=generator)
    centres = torch.tensor([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])
    points = centres[labels] + torch.randn(600, 2, generator=generator)
    assert probe.probe_accuracy(points[:400], labels[:400], points[400:], labels[400:]) > 0.95
    noise = torch.randn(600, 2, generator=generator)
    assert probe.probe_accuracy(noise[:400], labels[:400], noise[400:], labels[400:]) < 0.5


def test_mirror_train_doubles_training_motions_and_never_touches_the_test_split(tmp_path, smollm2_tokenizer_dir,
                                                                             shared_data):
    """data.mirror_train: every training question and CMU caption gets its mirror twin; the held-out split does not."""
    from humocon_tiny import make_tiny_llm_dir

    from humocon_hf.data.augmentation import mirror_text
    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions
    from humocon_hf.processing.smpl22 import mirror_joints

    llm_dir = make_tiny_llm_dir(tmp_path, smollm2_tokenizer_dir)
    data = {"num_train_motions": 6, "extra_train_motions": 0, "num_validation_motions": 1, "num_test_motions": 3, "questions_per_motion": 2, "vocabulary_clips_per_kind": 0, "real_sequences": 0,
            "max_frames": 64, "bandai_dir": None, "hdm05_dir": None}
    runs = {}
    for mirror in (False, True):
        out = tmp_path / f"mirror_{mirror}"
        overrides = {"model": {"llm_name_or_path": str(llm_dir)}, "data": {**data, "mirror_train": mirror}}
        pipeline = HuMoConPipeline(PipelineOptions(output_dir=str(out), overrides=overrides))
        pipeline.run(until="data")
        runs[mirror] = pipeline.load_data()
    (plain, plain_cmu), (qa, cmu) = runs[False], runs[True]
    n = len(plain["train"])
    assert len(qa["train"]) == 2 * n and qa["test"]["id"] == plain["test"]["id"]
    assert qa["train"]["id"][:n] == plain["train"]["id"]
    for row, twin in zip(qa["train"].select(range(n)), qa["train"].select(range(n, 2 * n))):
        assert twin["id"] == "M" + row["id"] and twin["answer"] == mirror_text(row["answer"])
        np.testing.assert_array_equal(np.load(twin["motion_path"]), mirror_joints(np.load(row["motion_path"])))
    assert plain_cmu, "the shared CMU mocap should be found"
    assert len(cmu) == 2 * len(plain_cmu)
    # The small recipe's held-out subjects are in no training row, have no mirror twin, and keep their actions.
    holdout = set(HuMoConPipeline(PipelineOptions(output_dir=str(tmp_path / "x"))).recipe.data.cmu_holdout_subjects)
    assert holdout and not {r["subject"] for r in cmu} & holdout
    heldout = json.loads((tmp_path / "mirror_True" / "stages" / "data" / "cmu_heldout.json").read_text())
    assert {r["subject"] for r in heldout} == holdout and not any(r.get("mirrored") for r in heldout)
    assert {r["action"] for r in heldout} == {"walk", "jump"} and {r["action"] for r in cmu} == {"walk", "run", "jump"}
    twins = {r["id"]: r for r in cmu}
    for row in plain_cmu:
        twin = twins["M" + row["id"]]
        assert twin["caption"] == mirror_text(row["caption"])
        np.testing.assert_array_equal(np.load(twin["motion_path"]), mirror_joints(np.load(row["motion_path"])))


def _one_step_overrides(tmp_path, smollm2_tokenizer_dir, questions_per_motion: int = 1, **model) -> dict:
    """Recipe overrides that run every stage for one step on a 1-layer LLM and a handful of motions."""
    from humocon_tiny import make_tiny_llm_dir

    llm_dir = make_tiny_llm_dir(tmp_path, smollm2_tokenizer_dir)
    return {
        "model": {"llm_name_or_path": str(llm_dir), "codebook_size": 16, **model},
        "data": {"num_train_motions": 6, "extra_train_motions": 0, "num_validation_motions": 1, "num_test_motions": 2,
                 "questions_per_motion": questions_per_motion, "max_frames": 64, "cmu_bvh_dir": None,
                 "bandai_dir": None, "hdm05_dir": None, "vocabulary_clips_per_kind": 0, "real_sequences": 0},
        "pretrain": {"phase1_max_steps": 1, "phase2_max_steps": 0, "per_device_train_batch_size": 4},
        "translate": {"max_steps": 1, "per_device_train_batch_size": 2, "bf16": False},
        "tune": {"max_steps": 1, "per_device_train_batch_size": 2, "bf16": False},
        # The trained text-only baseline (the small recipe counts a question prior instead): its stage is tested here.
        "evaluate": {"batch_size": 2, "max_new_tokens": 2, "num_examples": 1, "baseline": "text_only",
                     "baseline_max_steps": 1},
    }


def test_recipe_can_feed_the_llm_continuous_motion_features(tmp_path, smollm2_tokenizer_dir):
    """model.use_motion_quantized: false reaches the stage-2 model's config (and so every later stage)."""
    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions

    overrides = _one_step_overrides(tmp_path, smollm2_tokenizer_dir, use_motion_quantized=False)
    HuMoConPipeline(PipelineOptions(output_dir=str(tmp_path / "out"), overrides=overrides, use_cmu=False)).run(until="translate")
    config = json.loads((tmp_path / "out" / "stages" / "translate" / "model" / "config.json").read_text())
    assert config["use_motion_quantized"] is False

    # A field only the LLM stages read keeps the finished data and concept-discovery stages; stage 2 is redone.
    overrides["model"]["use_motion_quantized"] = True
    pipe = HuMoConPipeline(PipelineOptions(output_dir=str(tmp_path / "out"), overrides=overrides, use_cmu=False))
    pipe.run(until="translate")
    assert [name for name, record in pipe.runner.records.items() if record.reused] == ["data", "pretrain"]
    config = json.loads((tmp_path / "out" / "stages" / "translate" / "model" / "config.json").read_text())
    assert config["use_motion_quantized"] is True


def test_pose_reading_projector_reaches_the_model_and_keeps_the_text_only_baseline(tmp_path, smollm2_tokenizer_dir):
    """model.motion_projector_reads_poses reaches the stage-2 model (its projector reads stride x features more); a
    change of it redoes the motion stages from stage 2 on, but neither stage 1 nor the text-only baseline."""
    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions

    overrides = _one_step_overrides(tmp_path, smollm2_tokenizer_dir, motion_projector_reads_poses=False)
    out = tmp_path / "out"
    HuMoConPipeline(PipelineOptions(output_dir=str(out), overrides=overrides, use_cmu=False)).run(until="baseline")
    plain = HuMoConForCausalLM.from_pretrained(out / "stages" / "translate" / "model")
    overrides["model"]["motion_projector_reads_poses"] = True
    pipe = HuMoConPipeline(PipelineOptions(output_dir=str(out), overrides=overrides, use_cmu=False))
    pipe.run(until="baseline")
    assert [name for name, record in pipe.runner.records.items() if record.reused] == ["data", "pretrain", "baseline"]
    poses = HuMoConForCausalLM.from_pretrained(out / "stages" / "translate" / "model")
    assert poses.config.motion_projector_reads_poses and not plain.config.motion_projector_reads_poses
    extra = poses.config.motion_token_stride * poses.config.motion_config.feature_size
    assert poses.motion_projector.linear_1.in_features == plain.motion_projector.linear_1.in_features + extra


def test_recipe_attention_kernel_reaches_every_llm_the_demo_loads(tmp_path, smollm2_tokenizer_dir, monkeypatch):
    """model.attn_implementation: eager is used by the LLM of stages 2 and 3, the baseline and both evaluations,
    and is not pinned in the exported checkpoint (users keep transformers' default)."""
    from transformers import AutoModel

    from humocon_hf.demo import run_demo
    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

    seen = []
    for name in ("from_pretrained", "from_parts"):
        original = getattr(HuMoConForCausalLM, name).__func__

        def spy(cls, *args, _original=original, _name=name, **kwargs):
            model = _original(cls, *args, **kwargs)
            seen.append((_name, model.language_model.config._attn_implementation))
            return model

        monkeypatch.setattr(HuMoConForCausalLM, name, classmethod(spy))

    overrides = _one_step_overrides(tmp_path, smollm2_tokenizer_dir, attn_implementation="eager")
    run_demo(output_dir=str(tmp_path / "out"), overrides=overrides, use_cmu=False)
    # translate (from_parts), tune (from_pretrained), baseline (from_parts), evaluate (2 x from_pretrained); export
    # loads the tuned model once more with the default kernel.
    assert seen[:5] == [("from_parts", "eager"), ("from_pretrained", "eager"), ("from_parts", "eager"),
                        ("from_pretrained", "eager"), ("from_pretrained", "eager")]
    monkeypatch.undo()
    exported = AutoModel.from_pretrained(tmp_path / "out")
    assert exported.language_model.config._attn_implementation == "sdpa"


def test_balance_query_types_oversamples_the_training_questions_of_both_tuned_models(tmp_path, smollm2_tokenizer_dir):
    from collections import Counter

    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions

    overrides = _one_step_overrides(tmp_path, smollm2_tokenizer_dir, questions_per_motion=2)
    overrides["tune"]["balance_query_types"] = True
    pipe = HuMoConPipeline(PipelineOptions(output_dir=str(tmp_path / "out"), overrides=overrides, use_cmu=False))
    pipe.run(until="baseline")
    counts = Counter(pipe.load_data()[0]["train"]["query_type"])
    assert len(counts) > 1 and len(set(counts.values())) > 1  # skewed, so balancing adds rows
    for stage in ("tune", "baseline"):
        info = pipe.runner.records[stage].info
        assert info["questions"] == sum(counts.values())
        assert info["training_rows"] == len(counts) * max(counts.values())


def test_demo_and_ablation_over_seeds_aggregate_each_seeds_evaluation(tmp_path, monkeypatch, capsys):
    """`humocon demo --seeds` / `humocon ablate --seeds` wiring: one pipeline per seed (and variant) in its own
    folder with that seed, the per-seed evaluations pooled into the CI table and the paired tests."""
    import humocon_hf.demo as demo
    from humocon_hf.pipeline.ablation import RECIPE_VARIANTS, run_ablation_study
    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions

    runs = []
    ALL_SECTIONS = ("model", "data", "pretrain", "translate", "tune", "evaluate")

    def fake_run(self, until="export"):
        runs.append((self.root.relative_to(tmp_path).as_posix(), self.recipe.data.seed,
                     self.recipe.sections["tune"]["seed"], self.recipe.evaluate.baseline,
                     self.recipe.fingerprint(*ALL_SECTIONS)))
        return {"metrics": {"accuracy": 0.0}, "wall_time_s": {}}

    def fake_eval(self):
        rng = np.random.default_rng(self.recipe.data.seed)
        no_concepts = self.recipe.sections["pretrain"]["phase1_max_steps"] == 0
        qts = ["action", "direction", "body_part"]

        def preds(p_right):
            right = rng.random(90) < p_right
            return [{"id": f"s{self.recipe.data.seed}q{i}", "correct": bool(c), "query_type": qts[i % 3],
                     "relation_type": "none"} for i, c in enumerate(right)]

        out = {"model": {"metrics": {"accuracy": 0.5}, "predictions": preds(0.4 if no_concepts else 0.8)}}
        if self.recipe.evaluate.baseline != "none":
            out["baseline"] = {"metrics": {"accuracy": 0.3}, "predictions": preds(0.3)}
        return out

    monkeypatch.setattr(HuMoConPipeline, "run", fake_run)
    monkeypatch.setattr(HuMoConPipeline, "load_evaluation", fake_eval)

    summary = demo.run_demo_seeds(PipelineOptions(output_dir=str(tmp_path / "d")), [0, 1, 2])
    assert [r[:3] for r in runs] == [(f"d/seed{s}", s, s) for s in (0, 1, 2)]
    stats = summary["statistics"]
    assert stats["accuracy"]["model"]["n_seeds"] == 3 and stats["body_part"]["difference"]["significant"]
    assert json.loads((tmp_path / "d" / "seeds.json").read_text())["seeds"] == [0, 1, 2]
    assert "3 seeds" in (tmp_path / "d" / "seeds.md").read_text()
    with pytest.raises(ValueError, match="distinct"):
        demo.run_demo_seeds(PipelineOptions(output_dir=str(tmp_path / "d")), [1, 1])

    runs.clear()
    results = run_ablation_study(PipelineOptions(output_dir=str(tmp_path / "a")),
                                      {"full": {}, "no concept discovery": RECIPE_VARIANTS["no concept discovery"],
                                       "w/o alignment": {"use_alignment": False}}, seeds=[0, 1])
    assert [r[0] for r in runs] == ["a/seed0/full", "a/seed0/no_concept_discovery", "a/seed0/wo_alignment",
                                    "a/seed1/full", "a/seed1/no_concept_discovery", "a/seed1/wo_alignment"]
    assert [r[3] for r in runs] == ["question_prior", "none", "none"] * 2  # the baseline's row: with the full variant
    # The full variant is the recipe unchanged: a `humocon demo --seed 1` folder copied in is reused, not retrained.
    demo_seed1 = HuMoConPipeline(PipelineOptions(output_dir=str(tmp_path / "x"), seed=1))
    assert runs[3][4] == demo_seed1.recipe.fingerprint(*ALL_SECTIONS) != runs[5][4]
    assert list(results) == ["full", "question prior (no motion)", "no concept discovery", "w/o alignment"]
    diff = results["no concept discovery"]["statistics"]["accuracy"]["difference"]
    assert diff["diff"] < -0.2 and diff["significant"] and diff["n_seeds"] == 2
    table = (tmp_path / "a" / "ablation_table.md").read_text()
    assert "| no concept discovery |" in table and "| question prior (no motion) |" in table and "2 seeds" in table
    assert "| w/o alignment |" in table  # the small recipe pre-trains on rendered videos: alignment can be removed


def test_baseline_steps_redo_only_the_baseline(tmp_path, smollm2_tokenizer_dir):
    """evaluate.baseline_max_steps trains the text-only baseline for its own step count (scaled by --steps-scale)
    and, changed, redoes the baseline but none of the motion stages."""
    from humocon_hf.pipeline import fingerprints
    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions
    from humocon_hf.recipes import RecipeError, load_recipe

    overrides = _one_step_overrides(tmp_path, smollm2_tokenizer_dir)
    out = tmp_path / "out"
    HuMoConPipeline(PipelineOptions(output_dir=str(out), overrides=overrides, use_cmu=False)).run(until="baseline")
    overrides["evaluate"]["baseline_max_steps"] = 2
    pipe = HuMoConPipeline(PipelineOptions(output_dir=str(out), overrides=overrides, use_cmu=False))
    pipe.run(until="baseline")
    assert [name for name, record in pipe.runner.records.items() if record.reused] == ["data", "pretrain", "translate", "tune"]
    assert json.loads((out / "stages" / "baseline" / "stage.json").read_text())["info"]["steps"] == 2
    # With its own budget, the baseline does not depend on stage 3's steps: a longer stage 3 keeps it.
    overrides["tune"]["max_steps"] = 3
    pipe = HuMoConPipeline(PipelineOptions(output_dir=str(out), overrides=overrides, use_cmu=False))
    pipe.run(until="baseline")
    assert [name for name, record in pipe.runner.records.items() if record.reused] == ["data", "pretrain", "translate",
                                                                                        "baseline"]
    assert load_recipe("small", {"evaluate": {"baseline_max_steps": 100}}).scaled(0.5).evaluate.baseline_max_steps == 50
    with pytest.raises(RecipeError, match="baseline_max_steps must be >= 1"):
        load_recipe("small", {"evaluate": {"baseline_max_steps": 0}})

    # Without baseline_max_steps, evaluate.baseline_steps_fraction of stage 3's budget (as scaled), at least 1 step;
    # an explicit baseline_max_steps wins.
    def baseline_steps(steps_scale=1.0, **evaluate):
        options = PipelineOptions(output_dir=str(tmp_path / "x"), steps_scale=steps_scale,
                                  overrides={"tune": {"max_steps": 10},
                                             "evaluate": {"baseline_max_steps": None, **evaluate}})
        pipe = HuMoConPipeline(options)
        return (fingerprints.baseline_steps(pipe.recipe),
                fingerprints.baseline_fingerprint(pipe.recipe, pipe.runner).get("max_steps"))

    assert baseline_steps(baseline_steps_fraction=0.5) == (5, 5)
    assert baseline_steps(0.1, baseline_steps_fraction=0.5) == (None, None)  # 1 step = stage 3's: same fingerprint
    assert baseline_steps(baseline_steps_fraction=1.0) == (None, None)
    assert baseline_steps(baseline_steps_fraction=0.5, baseline_max_steps=7) == (7, 7)
    with pytest.raises(RecipeError, match="baseline_steps_fraction must be in"):
        load_recipe("small", {"evaluate": {"baseline_steps_fraction": 0}})


def test_baseline_weights_do_not_depend_on_whether_it_trained_after_stage_3_or_in_a_process_of_its_own(
        tmp_path, smollm2_tokenizer_dir):
    """The baseline trained after stage 3 (one process) and alone (the side process, a re-run): the same checkpoint,
    its unused projectors and added-token rows included; they were drawn before the stage seeded, from whatever random
    state stage 3 had left (issue 29's kill test found it)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions

    options = PipelineOptions(output_dir=str(tmp_path / "out"), use_cmu=False,
                              overrides=_one_step_overrides(tmp_path, smollm2_tokenizer_dir))
    HuMoConPipeline(options).run(until="baseline")
    folder = tmp_path / "out" / "stages" / "baseline"
    after_stage_3 = load_file(folder / "model" / "model.safetensors")
    shutil.rmtree(folder)
    HuMoConPipeline(options).run_single_stage("baseline")  # what the side process runs
    alone = load_file(folder / "model" / "model.safetensors")
    assert after_stage_3.keys() == alone.keys()
    for key in alone:
        torch.testing.assert_close(alone[key], after_stage_3[key], rtol=0, atol=0, msg=key)


def test_text_only_baseline_trains_alongside_in_a_second_process(tmp_path, smollm2_tokenizer_dir, monkeypatch,
                                                                  capsys):
    """With `baseline_alongside` (the CLI's default) a CPU run with 2 threads trains the baseline in a child process
    with one thread while stage 3 runs on the other; this process adopts the finished stage and takes both threads
    back. A failed child leaves the stage to this process; a finished baseline, or a finished stage 3, starts no
    child."""
    import torch

    from humocon_hf.pipeline import side_process
    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        overrides = _one_step_overrides(tmp_path, smollm2_tokenizer_dir)
        out = tmp_path / "out"
        options = PipelineOptions(output_dir=str(out), overrides=overrides, use_cmu=False, baseline_alongside=True)
        pipe = HuMoConPipeline(options)
        pipe.run(until="baseline")
        printed = capsys.readouterr().out
        assert "[baseline] starting alongside in a second process" in printed
        assert "[baseline] done alongside stage 3" in printed
        record = pipe.runner.records["baseline"]
        assert record.alongside and not record.reused and record.info["steps"] == 1
        assert torch.get_num_threads() == 2
        log = (out / "stages" / "baseline.side.log").read_text()
        assert "[baseline] starting" in log and "[baseline] done" in log
        assert (out / "stages" / "baseline" / "model" / "config.json").is_file()

        # Finished: reused, no child.
        again = HuMoConPipeline(options)
        again.run(until="baseline")
        assert again.runner.records["baseline"].reused and "alongside" not in capsys.readouterr().out

        # A new baseline beside a finished stage 3: nothing to train alongside, no child.
        overrides["evaluate"]["baseline_max_steps"] = 2
        third = HuMoConPipeline(PipelineOptions(output_dir=str(out), overrides=overrides, use_cmu=False,
                                                baseline_alongside=True))
        third.run(until="baseline")
        assert "alongside" not in capsys.readouterr().out
        record = third.runner.records["baseline"]
        assert third.runner.records["tune"].reused and not record.alongside and record.info["steps"] == 2

        # A child that fails: this process trains the baseline itself.
        monkeypatch.setattr(side_process, "SIDE_COMMAND", (sys.executable, "-c", "import sys; sys.exit(3)"))
        overrides["evaluate"]["baseline_max_steps"] = 3
        overrides["tune"]["max_steps"] = 2
        fourth = HuMoConPipeline(PipelineOptions(output_dir=str(out), overrides=overrides, use_cmu=False,
                                                 baseline_alongside=True))
        fourth.run(until="baseline")
        printed = capsys.readouterr().out
        assert "[baseline] the second process failed (exit code 3" in printed
        record = fourth.runner.records["baseline"]
        assert not record.alongside and not record.reused and record.info["steps"] == 3
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_stage_3_can_share_each_motions_prompt_between_its_questions(tmp_path, smollm2_tokenizer_dir):
    """tune.share_motion_prompt trains stage 3 on groups of a motion's questions (SharedMotionPromptCollator); the
    switch is part of stage 3's fingerprint, so turning it off redoes stage 3 and nothing before it."""
    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions

    overrides = _one_step_overrides(tmp_path, smollm2_tokenizer_dir, questions_per_motion=3)
    overrides["tune"].update(share_motion_prompt=True, max_steps=2)
    out = tmp_path / "out"
    pipe = HuMoConPipeline(PipelineOptions(output_dir=str(out), overrides=overrides, use_cmu=False))
    pipe.run(until="tune")
    info = json.loads((out / "stages" / "tune" / "stage.json").read_text())["info"]
    assert info["steps"] == 2 and info["batches"] == 2
    # A batch of 2 motions with their 3 questions each: one packed row per motion.
    rows, _ = pipe.stage3_rows(True)
    assert len(rows) == 3 * 6 * 2  # 6 training motions and their mirror twins, 3 questions each
    assert (out / "stages" / "tune" / "model" / "model.safetensors").is_file()
    overrides["tune"]["share_motion_prompt"] = False
    again = HuMoConPipeline(PipelineOptions(output_dir=str(out), overrides=overrides, use_cmu=False))
    again.run(until="tune")
    assert [name for name, record in again.runner.records.items() if record.reused] == ["data", "pretrain", "translate"]
