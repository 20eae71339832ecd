"""The `humocon` command line: --help of every command, `humocon ask` / `inspect` / `evaluate` on a tiny checkpoint
(recipes: test_recipes.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from humocon_tiny import build_tiny_checkpoint, write_motion_file

from humocon_hf.cli import build_parser, main

COMMANDS = ("demo", "ask", "pretrain", "translate", "tune", "evaluate", "ablate", "push", "inspect")


# ---------------------------------------------------------------------------------------------------- --help


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_for_every_option(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    sub = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == command)[1]
    for action in sub._actions:
        if action.dest == "help":
            continue
        assert action.help and len(action.help) > 10, f"{command} {action.option_strings or action.dest}: no help"
        for flag in action.option_strings:
            assert flag in out


def test_module_entry_point_runs():
    """`python -m humocon_hf.cli` is what `accelerate launch -m humocon_hf.cli ...` runs."""
    result = subprocess.run([sys.executable, "-m", "humocon_hf.cli", "tune", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--recipe" in result.stdout and "accelerate launch" in result.stdout


_HEAVY = ("torch", "transformers")


def _modules_after(code: str) -> list[str]:
    """The heavy packages a fresh interpreter has imported after running `code` (issue 30: importing them took ~9 s
    of `humocon --help`)."""
    probe = f"import sys\n{code}\nprint(sorted(m for m in {_HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"'))


@pytest.mark.parametrize("argv", [["--help"], ["ask", "--help"], ["inspect", "--help"], ["demo", "--help"]])
def test_help_imports_neither_torch_nor_transformers(argv):
    code = ("import contextlib, io, runpy\n"
            f"sys.argv = ['humocon', *{argv!r}]\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    runpy.run_module('humocon_hf.cli', run_name='__main__')")
    assert _modules_after(code) == []


def test_help_lists_the_accepted_media_files(capsys):
    from humocon_hf.processing.motion_io import MOTION_EXTENSIONS
    from humocon_hf.processing.video_processing_humocon import VIDEO_EXTENSIONS

    with pytest.raises(SystemExit):
        main(["ask", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert all(ext in out for ext in (*MOTION_EXTENSIONS, *VIDEO_EXTENSIONS))


def test_inspect_needs_neither_torch_nor_transformers(shared_data):
    bvh = shared_data / "cmu_bvh" / "09_01.bvh"
    code = ("import contextlib, io\nfrom humocon_hf.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main(['inspect', {str(bvh)!r}, '--preview', 'none']) == 0")
    assert _modules_after(code) == []


def test_no_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


# ------------------------------------------------------------------------------------------- tiny checkpoint


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, smollm2_tokenizer_dir) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("cli"), smollm2_tokenizer_dir)


def test_ask_answers_about_a_motion_file(tiny_checkpoint, tmp_path, capsys):
    """The streamed answer is exactly the greedy answer of the checkpoint loaded through the Auto classes."""
    import torch

    from humocon_hf.inference import load_checkpoint, load_media, user_message

    motion = write_motion_file(tmp_path)
    rc = main(["ask", "--model", str(tiny_checkpoint), "--motion", str(motion), "--device", "cpu",
               "What is the person doing?"])
    assert rc == 0
    out = capsys.readouterr().out

    model, processor, defaults = load_checkpoint(str(tiny_checkpoint), device="cpu")
    assert type(model).__name__ == "HuMoConForCausalLM" and defaults["max_new_tokens"] == 4
    joints, _ = load_media(processor, str(motion), None)
    conversation = [{"role": "system", "content": defaults["system_prompt"]},
                    user_message("What is the person doing?", joints)]
    inputs = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True, return_tensors="pt", return_dict=True)
    assert int((inputs["input_ids"] == processor.motion_token_id).sum()) == 4  # 30 frames / stride 8
    with torch.no_grad():
        ids = model.generate(**inputs, do_sample=False, max_new_tokens=4, pad_token_id=processor.tokenizer.pad_token_id)
    new = ids[0, inputs["input_ids"].shape[1]:]
    assert len(new) > 0
    assert out == processor.tokenizer.decode(new, skip_special_tokens=True) + "\n"


# What `humocon ask` must not import (issue 30: `ask` took 8.5 s against 5.7 s for importing torch and transformers):
# training code (Trainer, TrainingArguments and the peft they pull in, the recipes), data sets, plotting, OpenCV for a
# motion-only question.
_NOT_FOR_ASK = ("transformers.trainer", "transformers.training_args", "transformers.trainer_utils", "peft",
                "humocon_hf.recipes", "humocon_hf.training.instruction_tuning", "humocon_hf.training.concept_discovery",
                "humocon_hf.data", "humocon_hf.pipeline", "datasets", "matplotlib", "cv2")


def test_ask_imports_no_training_data_or_plotting_code(tiny_checkpoint, tmp_path):
    motion = write_motion_file(tmp_path)
    code = ("import contextlib, io, sys\nfrom humocon_hf.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main(['ask', '--model', {str(tiny_checkpoint)!r}, '--motion', {str(motion)!r}, '--device', "
            "'cpu', 'What is the person doing?']) == 0\n"
            f"print(sorted(m for m in {_NOT_FOR_ASK!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1].replace("'", '"')) == []


def test_ask_reads_the_added_tokens_without_parsing_the_whole_tokenizer_json(tiny_checkpoint, monkeypatch):
    """`load_checkpoint` hands the processor a tokenizer whose added tokens come from the head of tokenizer.json; it is
    the tokenizer transformers' own (slower) path builds."""
    from transformers import AutoProcessor

    import humocon_hf.inference as inference

    built = []
    original = inference._fast_tokenizer
    monkeypatch.setattr(inference, "_fast_tokenizer", lambda *a: built.append(original(*a)) or built[-1])
    _, processor, _ = inference.load_checkpoint(str(tiny_checkpoint), device="cpu")
    assert built and built[0] is processor.tokenizer
    reference = AutoProcessor.from_pretrained(str(tiny_checkpoint)).tokenizer
    fast = processor.tokenizer
    assert fast.added_tokens_decoder == reference.added_tokens_decoder and fast.added_tokens_decoder
    assert fast.all_special_tokens == reference.all_special_tokens and fast.chat_template == reference.chat_template
    text = "<|im_start|>user\n<motion>\nWhat is the person doing?<|im_end|>"
    assert fast(text).input_ids == reference(text).input_ids
    assert fast.decode(fast(text).input_ids, skip_special_tokens=True) == reference.decode(
        reference(text).input_ids, skip_special_tokens=True)


def test_ask_interactive_keeps_the_conversation(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    import io

    import humocon_hf.cli as cli

    seen = []
    original = cli.stream_answer

    def recording(model, processor, conversation, max_new_tokens=32, bf16=False, options="auto"):
        seen.append([m["role"] for m in conversation])
        yield from original(model, processor, conversation, max_new_tokens, bf16=bf16, options=options)

    monkeypatch.setattr(cli, "stream_answer", recording)
    monkeypatch.setattr(sys, "stdin", io.StringIO("And then?\n\n"))
    motion = write_motion_file(tmp_path)
    rc = main(["ask", "--model", str(tiny_checkpoint), "--motion", str(motion), "--interactive", "--device", "cpu",
               "What is the person doing?"])
    assert rc == 0
    # Second turn sees system, first question, first answer, follow-up.
    assert seen == [["system", "user"], ["system", "user", "assistant", "user"]]


@pytest.mark.parametrize("flags, question, allowed", [
    ([], "Which way does the person turn, left or right?", {"left", "right"}),
    (["--options", "jump, squat"], "What is the person doing?", {"jump", "squat"}),
    (["--free-answer"], "Which way does the person turn, left or right?", None),
])
def test_ask_keeps_the_answer_to_the_options(tiny_checkpoint, tmp_path, capsys, flags, question, allowed):
    """The question's own options ("..., left or right?"), or --options, bound the answer; --free-answer does not
    (the random tiny checkpoint left free answers neither)."""
    motion = write_motion_file(tmp_path)
    rc = main(["ask", "--model", str(tiny_checkpoint), "--motion", str(motion), "--device", "cpu", *flags, question])
    answer = capsys.readouterr().out.strip()
    assert rc == 0
    if allowed:
        assert answer in allowed
    else:
        assert answer not in {"left", "right"}


def test_ask_rejects_empty_options(tiny_checkpoint, tmp_path, capsys):
    motion = write_motion_file(tmp_path)
    rc = main(["ask", "--model", str(tiny_checkpoint), "--motion", str(motion), "--options", " , ", "Walk or run?"])
    assert rc == 2 and "--options" in capsys.readouterr().err


def test_ask_reads_a_real_bvh(tiny_checkpoint, shared_data, capsys):
    bvh = shared_data / "cmu_bvh" / "09_01.bvh"
    if not bvh.is_file():
        pytest.skip(f"{bvh} not present")
    rc = main(["ask", "--model", str(tiny_checkpoint), "--motion", str(bvh), "--device", "cpu",
               "What is the person doing?"])
    assert rc == 0
    assert capsys.readouterr().out.endswith("\n")


def test_ask_reads_a_video(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    """Only the key frames are decoded (never the whole video: ~5 GB per minute of 720p)."""
    import imageio.v2 as imageio

    import humocon_hf.processing.video_processing_humocon as video_processing

    def whole_video(*args, **kwargs):
        raise AssertionError("the whole video was decoded")

    import humocon_hf.processing.video_decoding as video_decoding

    monkeypatch.setattr(video_processing, "load_video", whole_video)
    monkeypatch.setattr(video_decoding, "load_video", whole_video)
    frames = (np.random.default_rng(0).random((12, 48, 48, 3)) * 255).astype(np.uint8)
    path = tmp_path / "clip.gif"
    imageio.mimsave(path, list(frames), duration=0.05)
    rc = main(["ask", "--model", str(tiny_checkpoint), "--video", str(path), "--device", "cpu", "What happens?"])
    assert rc == 0
    assert capsys.readouterr().out.endswith("\n")


def test_ask_errors_say_what_to_do(tiny_checkpoint, tmp_path, capsys):
    assert main(["ask", "--model", str(tiny_checkpoint), "--device", "cpu"]) == 2
    assert "--interactive" in capsys.readouterr().err
    assert main(["ask", "--model", str(tmp_path / "none"), "q"]) == 2
    assert "humocon demo" in capsys.readouterr().err
    assert main(["ask", "--model", str(tmp_path), "q"]) == 2  # a folder that is not a checkpoint
    assert "config.json" in capsys.readouterr().err
    assert main(["ask", "--model", str(tiny_checkpoint), "--motion", str(tmp_path / "x.bvh"), "q"]) == 2
    assert "file not found" in capsys.readouterr().err
    bad = tmp_path / "clip.txt"
    bad.write_text("x")
    assert main(["ask", "--model", str(tiny_checkpoint), "--motion", str(bad), "q"]) == 2
    assert ".bvh" in capsys.readouterr().err
    empty = tmp_path / "empty.bvh"
    empty.write_text("")
    assert main(["ask", "--model", str(tiny_checkpoint), "--motion", str(empty), "--device", "cpu", "q"]) == 2
    assert "empty.bvh" in capsys.readouterr().err
    assert main(["ask", "--model", str(tiny_checkpoint), "--motion", str(tmp_path), "q"]) == 2
    assert "is a folder" in capsys.readouterr().err
    motion = write_motion_file(tmp_path)
    assert main(["ask", "--model", str(tiny_checkpoint), "--motion", str(motion), "--motion-fps", "0", "--device",
                 "cpu", "q"]) == 2
    assert "--motion-fps must be a positive frame rate" in capsys.readouterr().err
    amass = tmp_path / "poses.npz"
    np.savez(amass, poses=np.zeros((4, 156)), trans=np.zeros((4, 3)))
    assert main(["ask", "--model", str(tiny_checkpoint), "--motion", str(amass), "--device", "cpu", "q"]) == 2
    assert "load_amass_npz(path, body_model_dir=" in capsys.readouterr().err


def test_evaluate_a_checkpoint_writes_json_table_and_model_index(tiny_checkpoint, tmp_path, capsys):
    import yaml

    llm_dir = tiny_checkpoint.parent / "tiny-llm"  # where build_tiny_checkpoint put the LLM
    out = tmp_path / "eval"
    code = main([
        "evaluate", "--model", str(tiny_checkpoint), "--output-dir", str(out), "--no-cmu",
        "--override", f"model.llm_name_or_path={llm_dir}", "--override", "data.num_train_motions=4", "--override", "data.extra_train_motions=0",
        "--override", "data.num_validation_motions=1", "--override", "data.num_test_motions=2",
        "--override", "data.questions_per_motion=2", "--override", "data.max_frames=64",
        "--override", "evaluate.max_new_tokens=2", "--override", "evaluate.batch_size=4",
        "--override", "data.vocabulary_clips_per_kind=1", "--override", "data.real_sequences=0",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Overall" in printed
    # The held-out procedural vocabulary clips (raise, both hands, turn) are asked too, as a line of their own.
    assert "Procedural vocabulary clips, held out" in printed
    asked = json.loads((out / "evaluation_ckpt_vocabulary.json").read_text())
    assert {p["id"].split(":")[0] for p in asked["predictions"]} == {
        f"vocab_heldout_{kind}_000" for kind in ("raise-left-hand", "raise-right-hand", "raise-both-hands",
                                                 "wave-both-hands", "turn-left", "turn-right", "walk-turn-left",
                                                 "walk-turn-right")}
    result = json.loads((out / "evaluation_ckpt.json").read_text())
    assert result["metrics"]["counts"]["total"] == 4
    # The data stage it ran is the pipeline's own: `humocon demo` on the same folder and recipe reuses it (and the
    # other way round), instead of redoing it under a second fingerprint.
    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions

    overrides = {"model": {"llm_name_or_path": str(llm_dir)},
                 "data": {"num_train_motions": 4, "extra_train_motions": 0, "num_validation_motions": 1,
                          "num_test_motions": 2, "questions_per_motion": 2, "max_frames": 64,
                          "vocabulary_clips_per_kind": 1, "real_sequences": 0},
                 "evaluate": {"max_new_tokens": 2, "batch_size": 4}}
    pipeline = HuMoConPipeline(PipelineOptions(output_dir=str(out), overrides=overrides, use_cmu=False))
    assert pipeline.runner.finished("data", pipeline.data_fingerprint()) is not None
    assert "Overall" in (out / "evaluation_ckpt_table.md").read_text()
    index = yaml.safe_load((out / "evaluation_ckpt_model_index.yaml").read_text())["model-index"]
    values = {m["name"]: m["value"] for m in index[0]["results"][0]["metrics"]}
    assert values["Overall accuracy"] == pytest.approx(round(result["metrics"]["accuracy"], 4))


def test_ablate_rejects_unknown_variants(capsys):
    assert main(["ablate", "--variants", "full", "w/o everything"]) == 2
    err = capsys.readouterr().err
    assert "w/o everything" in err and "w/o velocity reconstruction" in err


def test_cli_leaves_the_process_group_before_exiting(tmp_path):
    """Under `accelerate launch` every `humocon` command ends by destroying its process group (a gloo group left to
    interpreter exit can abort a rank after a successful run), also when the command fails."""
    import torch.distributed as dist

    from humocon_hf import cli

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert dist.is_initialized()
    assert cli.main(["evaluate", "--recipe", str(tmp_path / "missing.yaml"), "--output-dir", str(tmp_path)]) == 2
    assert not dist.is_initialized()


def test_inspect_shows_the_mapping_units_and_a_preview(shared_data, tmp_path, capsys):
    bvh = shared_data / "bandai_namco_1" / "data" / "dataset-1_walk_normal_001.bvh"
    preview = tmp_path / "walk.gif"
    assert main(["inspect", str(bvh), "--preview", str(preview)]) == 0
    out = capsys.readouterr().out
    assert "automatic (topology + joint names)" in out and "units:     cm" in out and "up axis +y" in out
    assert "left_hip       UpperLeg_L" in out and "right_wrist    Hand_R" in out and "file rate 30 fps" in out
    assert preview.is_file() and preview.stat().st_size > 1000
    assert main(["inspect", str(shared_data / "cmu_bvh" / "16_01.bvh"), "--source-fps", "120", "--preview", "none",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rig"] == "cmu_amc2bvh" and report["source_fps"] == 120 and report["joint_mapping"]["neck"] == "upperneck"
    assert "preview" not in report


def test_inspect_into_a_closed_pipe_exits_quietly(tmp_path):
    """`humocon inspect ... | head` ended in a BrokenPipeError traceback (issue 30); the reader here is gone before the
    command writes, so every write fails."""
    motion = write_motion_file(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "humocon_hf.cli", "inspect", str(motion), "--preview", "none"],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert result.returncode == 141 and result.stderr == "", result.stderr[-2000:]


@pytest.mark.parametrize("start, end, fps, expected", [
    (136, 137, 20, "6.80 s"),  # one frame: one time (was "6.8- 6.8 s")
    (0, 25, 20, "0.00-1.25 s"),
    (24, 25, 20, "1.20 s"),
    (8, 16, 20, "0.40-0.80 s"),
    (0, 3, 120, "0.000-0.025 s"),
    (5, 15, 10, "0.5-1.5 s"),
])
def test_concept_segment_times(start, end, fps, expected):
    from humocon_hf.inference import time_span

    assert time_span(start, end, fps) == expected


def test_concept_lines_align_and_show_one_frame_segments(monkeypatch):
    import humocon_hf.concepts as concepts
    from humocon_hf.inference import concept_lines

    segments = [(0, 24, 245), (24, 25, 118), (25, 140, 7)]
    monkeypatch.setattr(concepts, "motion_concepts", lambda encoder, fe, motions: [{"segments": segments}])

    class Model:
        motion_encoder = None
        config = type("C", (), {"motion_config": type("M", (), {"concept_descriptions": {"245": "running"}})()})()

    processor = type("P", (), {"motion_feature_extractor": type("F", (), {"fps": 20.0})()})()
    lines = concept_lines(Model(), processor, np.zeros((140, 22, 3), np.float32))
    assert lines[1:] == ["  0.00-1.20 s  #245   running", "       1.20 s  #118", "  1.25-7.00 s  #7"]


def test_concept_lines_name_the_side_a_shared_concept_leaves_open(monkeypatch):
    """A concept that says "one arm raised" (a code shared by left and right raises) is shown with the clip's side."""
    from test_concept_descriptions import _left_arm_raise

    import humocon_hf.concepts as concepts
    from humocon_hf.inference import concept_lines
    from humocon_hf.processing.smpl22 import mirror_joints

    monkeypatch.setattr(concepts, "motion_concepts", lambda encoder, fe, motions: [{"segments": [(0, 40, 9)]}])

    class Model:
        motion_encoder = None
        config = type("C", (), {"motion_config": type("M", (), {"concept_descriptions": {"9": "one arm raised"}})()})()

    processor = type("P", (), {"motion_feature_extractor": type("F", (), {"fps": 20.0})()})()
    assert concept_lines(Model(), processor, _left_arm_raise())[1].endswith("#9     left arm raised")
    assert concept_lines(Model(), processor, mirror_joints(_left_arm_raise()))[1].endswith("#9     right arm raised")


def test_inspect_errors_are_one_line(shared_data, tmp_path, capsys):
    bvh = shared_data / "cmu_bvh" / "16_01.bvh"
    for argv, expected in [
        (["inspect", str(tmp_path / "none.bvh")], "no such file"),
        (["inspect", str(tmp_path)], "is a folder"),
        (["inspect", str(bvh), "--joint-map", "{neck"], "not valid JSON"),
        (["inspect", str(bvh), "--joint-map", '{"neck": "nose"}', "--preview", "none"], "'nose' is not a joint"),
        (["inspect", str(shared_data / "humanml3d_sample" / "Mean.npy"), "--rig", "auto"], "ASF/AMC files only"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err and err.count("\n") == 1, (argv, err)


def test_ask_says_when_a_long_motion_is_truncated(tiny_checkpoint, tmp_path, capsys):
    from transformers import AutoProcessor

    max_frames = AutoProcessor.from_pretrained(tiny_checkpoint).motion_feature_extractor.max_frames
    motion = write_motion_file(tmp_path, frames=max_frames + 40)
    assert main(["ask", "--model", str(tiny_checkpoint), "--motion", str(motion), "--device", "cpu", "q"]) == 0
    err = capsys.readouterr().err
    assert f"({max_frames + 40} frames at 20 fps)" in err and f"reads its first {max_frames} frames" in err


def test_ask_broken_checkpoints_are_one_line_errors(tiny_checkpoint, tmp_path, capsys):
    import shutil

    def broken(name, change):
        folder = tmp_path / name
        shutil.copytree(tiny_checkpoint, folder)
        change(folder)
        return folder

    def set_type(folder):
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))

    def truncate(folder):
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])

    def drop_processor(folder):
        for name in ("processor_config.json", "tokenizer.json", "tokenizer_config.json"):
            (folder / name).unlink(missing_ok=True)

    cases = [
        (broken("bert", set_type), "model_type 'bert'"),
        (broken("no_weights", lambda f: (f / "model.safetensors").unlink()), "has no weights"),
        (broken("truncated", truncate), "truncated or corrupt"),
        (broken("no_processor", drop_processor), "processor / tokenizer files"),
        (broken("bad_json", lambda f: (f / "config.json").write_text("{oops")), "not a valid JSON"),
        ("humocon-test/not-cached", "Hub cannot be reached"),
    ]
    for model, expected in cases:
        assert main(["ask", "--model", str(model), "--device", "cpu", "q"]) == 2, model
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1]  # (a weights progress bar may come before it)
        assert last.startswith("humocon ask: error: --model") and expected in last and "Traceback" not in err, err


def test_pipeline_value_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    argv = ["pretrain", "--no-cmu", "--output-dir", str(tmp_path / "o"), "--override", "data.max_frames=10"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "max_frames must allow at least 2.5 s" in err and "--debug" in err
    with pytest.raises(ValueError, match="max_frames"):
        main(["--debug", *argv])


def test_ask_answers_with_the_numerics_the_checkpoint_was_evaluated_with(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    """A checkpoint trained (and evaluated) under bf16 autocast says so in humocon_chat.json; `humocon ask` then
    generates under bf16 autocast too (where the CPU has it), float32 otherwise."""
    import shutil

    import humocon_hf.inference as inference

    seen = []
    real = inference.generation_autocast
    monkeypatch.setattr(inference, "generation_autocast", lambda model, enabled: seen.append(enabled) or real(model, enabled))
    motion = write_motion_file(tmp_path)
    for bf16 in (False, True):
        folder = tmp_path / f"ckpt_{bf16}"
        shutil.copytree(tiny_checkpoint, folder)
        chat = json.loads((folder / "humocon_chat.json").read_text())
        (folder / "humocon_chat.json").write_text(json.dumps({**chat, "bf16": bf16}))
        assert main(["ask", "--model", str(folder), "--motion", str(motion), "--device", "cpu", "What?"]) == 0
    assert seen == [False, True]
