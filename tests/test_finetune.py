"""`humocon finetune` / `humocon_hf.finetune.finetune`: stage 3 only, from an existing checkpoint, on a user's QA file."""

import json

import torch
from humocon_tiny import build_tiny_checkpoint, write_motion_file

from humocon_hf.cli import main


def _qa_file(folder, motion, answer: str, n: int) -> str:
    rows = [{"motion_path": str(motion), "question": "What is the person doing?", "answer": answer} for _ in range(n)]
    path = folder / f"qa_{answer}_{n}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_finetune_a_checkpoint_on_a_custom_qa_file_then_resume(tmp_path, smollm2_tokenizer_dir, capsys):
    from transformers import AutoModel

    source = build_tiny_checkpoint(tmp_path, smollm2_tokenizer_dir)
    motion = write_motion_file(tmp_path)
    train = _qa_file(tmp_path, motion, "jump", 16)
    held_out = _qa_file(tmp_path, motion, "jump", 4)
    out = tmp_path / "ft"
    args = ["finetune", "--model", str(source), "--data", train, "--eval-data", held_out, "--output-dir", str(out),
            "--override", "tune.max_steps=30", "--override", "tune.per_device_train_batch_size=4",
            "--override", "tune.learning_rate=1e-2", "--override", "tune.warmup_steps=0",
            "--override", "tune.bf16=false", "--override", "tune.save_steps=10", "--override", "tune.logging_steps=5"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    info = json.loads((out / "finetune.json").read_text())
    assert info["steps"] == 30 and info["train_rows"] == 16 and info["source"] == str(source)
    # The tiny random LLM learns the one answer of the file: held-out accuracy rises (from 0) to 1.
    assert info["eval_before"]["accuracy"] == 0.0 and info["eval_after"]["accuracy"] == 1.0
    assert "0.0% before -> 100.0% after" in printed
    card = (out / "README.md").read_text()
    assert f"fine-tuned from `{source.name}`" in card and str(tmp_path) not in card and "qa_jump_16.jsonl" in card and "| after fine-tuning | 100.0% |" in card

    tuned = AutoModel.from_pretrained(out).eval()
    original = AutoModel.from_pretrained(source).eval()
    assert not any("lora" in k for k in tuned.state_dict())  # merged
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, original.state_dict()[k])]
    assert changed and all(not k.startswith(("motion_encoder", "video_encoder")) for k in changed)  # encoders frozen
    assert json.loads((out / "humocon_chat.json").read_text())["system_prompt"] == "Answer briefly."

    # Re-running the same command reuses the finished run; a killed run would resume from its last checkpoint.
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    assert json.loads((out / "finetune.json").read_text())["steps"] == 30


def test_finetune_errors_name_the_input(tmp_path, capsys):
    assert main(["finetune", "--model", str(tmp_path / "nope"), "--data", str(tmp_path / "qa.jsonl")]) == 2
    assert "--data" in capsys.readouterr().err
    (tmp_path / "qa.jsonl").write_text("")
    assert main(["finetune", "--model", str(tmp_path / "nope"), "--data", str(tmp_path / "qa.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "qa.jsonl" in err or "no such folder" in err


def test_readme_finetune_snippet_runs(tmp_path, smollm2_tokenizer_dir):
    """The README's Python fine-tuning example, run as written on the tiny checkpoint (paths and steps swapped)."""
    import re
    from pathlib import Path

    from transformers import AutoModel

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Fine-tuning a checkpoint on your QA data"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    source = build_tiny_checkpoint(tmp_path, smollm2_tokenizer_dir)
    data = _qa_file(tmp_path, write_motion_file(tmp_path), "jump", 4)
    code = (code.replace('"humocon_demo"', repr(str(source))).replace('"my_qa.jsonl"', repr(data))
            .replace('"runs/ft"', repr(str(tmp_path / "ft"))).replace("max_steps=200", "max_steps=2")
            .replace("per_device_train_batch_size=8", "per_device_train_batch_size=2, report_to=[], use_cpu=True"))
    exec(compile(code, "README.md", "exec"), {})
    assert type(AutoModel.from_pretrained(tmp_path / "ft")).__name__ == "HuMoConForCausalLM"


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
