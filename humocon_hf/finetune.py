"""Fine-tune a published HuMoCon checkpoint on your own motion / video QA data.

What a user of an HF model repo expects: start from `AutoModel.from_pretrained("org/humocon")` (a folder or a Hub
id), run LoRA instruction tuning (the recipe's stage 3: `tune` section) on a custom QA file, measure the held-out
accuracy before and after, and save a merged checkpoint whose card says what it was fine-tuned from and on.
Nothing is rebuilt from stage 1. An interrupted run resumes from its last complete Trainer checkpoint.

In Python (what `humocon finetune` runs)::

    from transformers import AutoModel, AutoProcessor, TrainingArguments
    from humocon_hf.data import load_custom_qa
    from humocon_hf.training.instruction_tuning import HuMoConQACollator, InstructionTuningTrainer, merge_adapter

    model = AutoModel.from_pretrained("org/humocon")
    processor = AutoProcessor.from_pretrained("org/humocon")
    trainer = InstructionTuningTrainer(model=model, args=TrainingArguments("runs/ft", max_steps=200),
                                       processor=processor, train_dataset=load_custom_qa("my_qa.jsonl"),
                                       data_collator=HuMoConQACollator(processor), train_projectors=True)
    trainer.train()
    merge_adapter(trainer.model).save_pretrained("runs/ft")
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FINETUNE_INFO = "finetune.json"


def _accuracy(model, processor, model_args, rows, batch_size: int, max_new_tokens: int, bf16: bool) -> dict | None:
    """Exact-match accuracy (BABEL-QA normalisation) on question/answer rows; None without such rows."""
    from humocon_hf.evaluation import evaluate_motion_qa
    from humocon_hf.inference import make_answer_fn

    rows = [r for r in rows if r.get("question") and r.get("answer")]
    if not rows:
        return None
    answer = make_answer_fn(model, processor, model_args, max_new_tokens, with_motion=True, bf16=bf16)
    result = evaluate_motion_qa(answer, rows, batch_size=batch_size, model_name="finetune", dataset_name="custom QA",
                                dataset_type="custom", split="eval")
    return {"accuracy": result["metrics"]["accuracy"], "questions": len(rows), "predictions": result["predictions"]}


def _file_fingerprint(path) -> str:
    """A file's size and modification time (a data set folder or Hub id: its name), to tell a changed input."""
    p = Path(path)
    if p.is_file():
        stat = p.stat()
        return f"{p.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return str(path)


def _card(source: str, train_data: str, eval_data: str | None, info: dict, model) -> str:
    """The fine-tuned checkpoint's README. It is written to be pushed: no local path appears in it (a local source
    checkpoint, the data files and the output folder are named by their last part, paths in the command too)."""
    from humocon_hf.hub import REMOTE_CODE_PIP
    from humocon_hf.model_card import local_name, public_command, public_name

    before, after = info.get("eval_before"), info.get("eval_after")
    hub_source = public_name(source)
    shown_source = hub_source or local_name(source)
    name = Path(info["output_dir"]).name
    command = public_command(info.get("command"))
    lines = [
        "---",
        "library_name: transformers",
        f"base_model: {hub_source}" if hub_source else None,
        "base_model_relation: finetune" if hub_source else None,
        "tags:",
        "- humocon",
        "- motion-understanding",
        "- custom_code",
        "---",
        "",
        f"# {name}",
        "",
        f"A HuMoCon checkpoint fine-tuned from `{shown_source}` with LoRA instruction tuning (merged) on "
        f"`{Path(train_data).name}` ({info['train_rows']} examples), {info['steps']} steps; "
        f"{'projectors trained too' if info['train_projectors'] else 'projectors frozen'}.",
        "",
        f"Command: `{command}`" if command else None,
        "",
    ]
    if after is not None:
        lines += [
            f"Held-out accuracy on `{Path(eval_data).name}` ({after['questions']} questions, exact match after "
            "BABEL-QA answer normalisation):",
            "",
            "| | accuracy |",
            "|---|---|",
            f"| before fine-tuning (`{shown_source}`) | {100 * before['accuracy']:.1f}% |" if before else None,
            f"| after fine-tuning | {100 * after['accuracy']:.1f}% |",
            "",
        ]
    lines += [
        "## Usage",
        "",
        "```python",
        "from transformers import AutoModel, AutoProcessor",
        "",
        f'model = AutoModel.from_pretrained("{name}", trust_remote_code=True)  # this folder, or its Hub id',
        f'processor = AutoProcessor.from_pretrained("{name}", trust_remote_code=True)',
        "```",
        "",
        f"The checkpoint's own code needs only `{REMOTE_CODE_PIP}`; with `pip install humocon-hf`, "
        "`trust_remote_code` is not needed.",
        "",
    ]
    return "\n".join(line for line in lines if line is not None)


def finetune(
    model_name_or_path: str,
    train_data: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    eval_data: str | os.PathLike | None = None,
    recipe: str = "small",
    overrides: dict[str, dict[str, Any]] | None = None,
    steps_scale: float = 1.0,
    trust_remote_code: bool = False,
    command: str | None = None,
) -> dict:
    """Fine-tune `model_name_or_path` (a HuMoCon checkpoint folder or Hub id) on `train_data` (a custom QA file as
    `load_custom_qa` reads it), with the recipe's `tune` section (LoRA rank, steps, learning rate, batch size,
    `train_projectors`); evaluate on `eval_data` before and after; write the merged checkpoint, its processor, chat
    defaults, a model card and `finetune.json` to `output_dir`. Returns the `finetune.json` content."""
    from humocon_hf.data import load_custom_qa
    from humocon_hf.hub import save_for_remote_code
    from humocon_hf.inference import load_checkpoint, qa_collator, write_chat_defaults
    from humocon_hf.pipeline.runner import (
        seed_before_init,
        train_info,
        train_resuming,
        write_json_atomic,
    )
    from humocon_hf.recipes import load_recipe
    from humocon_hf.training.instruction_tuning import (
        InstructionTuningTrainer,
        merge_adapter,
    )

    out = Path(output_dir).expanduser().resolve()
    recipe_obj = load_recipe(recipe, overrides)
    if steps_scale != 1.0:
        recipe_obj = recipe_obj.scaled(steps_scale)
    fingerprint = {"source": model_name_or_path, "train_data": _file_fingerprint(train_data),
                   "eval_data": None if eval_data is None else _file_fingerprint(eval_data),
                   "model": recipe_obj.sections.get("model"), "tune": recipe_obj.sections.get("tune")}
    done = out / FINETUNE_INFO
    if done.is_file() and (out / "config.json").is_file():
        previous = json.loads(done.read_text())
        if previous.get("fingerprint") == json.loads(json.dumps(fingerprint, default=str)):
            return previous  # the same fine-tuning finished before: nothing to redo
    targs, tune_args = recipe_obj.training_args("tune", output_dir=out / "checkpoints")
    train = load_custom_qa(str(train_data), require_answer=True)  # a record without an answer trains on nothing
    if len(train) == 0:
        raise ValueError(f"{train_data}: no usable training examples")
    eval_rows = list(load_custom_qa(str(eval_data))) if eval_data is not None else []
    model, processor, defaults = load_checkpoint(model_name_or_path, trust_remote_code=trust_remote_code)
    model_args = recipe_obj.model
    # Ask the questions the way the checkpoint was tuned (its system prompt), unless the recipe overrides it.
    if overrides is None or "system_prompt" not in (overrides.get("model") or {}):
        model_args.system_prompt = defaults.get("system_prompt", model_args.system_prompt)
    ev = recipe_obj.evaluate
    max_new_tokens = defaults.get("max_new_tokens") or ev.max_new_tokens
    # Evaluate (and record in the chat settings for `humocon ask`) as the tune stage trains: under bf16 autocast where
    # the recipe asks for bf16 and the machine has it (`generation_autocast` checks the machine), as the demo's
    # pipeline does (`generation_bf16`). `bf16_on_cpu` gives only the changes a CPU needs to the training arguments
    # (`{}`, `{"use_cpu": True}` or `{"bf16": False}`), never `bf16: True`: reading it here meant float32 always.
    bf16 = bool(recipe_obj.sections["tune"].get("bf16"))

    info: dict[str, Any] = {"fingerprint": fingerprint, "source": model_name_or_path, "train_data": str(train_data),
                            "train_rows": len(train),
                            "eval_data": None if eval_data is None else str(eval_data), "output_dir": str(out),
                            "command": command, "train_projectors": bool(tune_args.train_projectors)}
    if eval_rows:
        model.eval()
        info["eval_before"] = _accuracy(model, processor, model_args, eval_rows, ev.batch_size, max_new_tokens, bf16)
    seed_before_init(targs.seed)
    lora = {"lora_target_modules": tune_args.lora_target_modules} if tune_args.lora_target_modules else {}
    trainer = InstructionTuningTrainer(
        model=model, args=targs, processor=processor, train_dataset=train,
        data_collator=qa_collator(processor, model_args),
        lora_r=tune_args.lora_r, lora_alpha=tune_args.lora_alpha, lora_dropout=tune_args.lora_dropout,
        train_projectors=tune_args.train_projectors, **lora,
    )
    metrics = train_resuming(trainer, targs.output_dir)
    info.update(train_info(trainer, metrics))
    merged = merge_adapter(trainer.model).eval()
    if eval_rows:
        info["eval_after"] = _accuracy(merged, processor, model_args, eval_rows, ev.batch_size, max_new_tokens, bf16)
    save_for_remote_code(merged, out, processor=processor)
    write_chat_defaults(out, model_args.system_prompt, max_new_tokens, bf16)
    (out / "README.md").write_text(_card(model_name_or_path, str(train_data), info["eval_data"], info, merged),
                                   encoding="utf-8")
    summary = {k: v for k, v in info.items()}
    for key in ("eval_before", "eval_after"):
        if summary.get(key):
            summary[key] = {k: v for k, v in summary[key].items() if k != "predictions"}
    write_json_atomic(out / FINETUNE_INFO, summary)
    if eval_rows:
        write_json_atomic(out / "finetune_predictions.json",
                    {k: (info.get(k) or {}).get("predictions") for k in ("eval_before", "eval_after")})
    return json.loads((out / FINETUNE_INFO).read_text())


__all__ = ["FINETUNE_INFO", "finetune"]
