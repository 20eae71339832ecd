"""Fine-tune a published HuMoCon checkpoint on your own motion / video QA data.

What a user of an HF model repo expects: start from `AutoModel.from_pretrained("org/humocon")` (a folder or a Hub
id), run LoRA instruction tuning (the recipe's stage 3: `tune` section) on a custom QA file for a budget that follows
the data's size, keep what the checkpoint knew (a share of its own procedural training questions replayed), measure
before and after, and save a merged checkpoint with its chat settings and a card saying what it was fine-tuned from
and on. Nothing is rebuilt from stage 1. An interrupted run resumes from its last complete Trainer checkpoint.

`humocon finetune` calls `finetune` with the same defaults, so the command and Python cannot drift apart::

    from humocon_hf.finetune import finetune

    finetune("org/humocon", "my_qa.jsonl", "runs/ft", eval_data="my_qa_test.jsonl")

It is built from `build_instruction_tuning_trainer` (the pipeline's stage-3 trainer), the recipe's collator
(`humocon_hf.inference.qa_collator`), `merge_adapter` and `write_chat_defaults`: read it as the recipe for a training
loop of your own.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

FINETUNE_INFO = "finetune.json"
PROCEDURAL_DIR = "procedural"  # the regenerated procedural questions (replayed and held out), in the output folder

# A few passes over the data, not the recipe's 550 steps whatever the data's size: 199 rows trained for 550 steps
# (22 epochs) had a training loss of ~0.001 by epoch 12 and forgot what the new data did not ask about.
DEFAULT_EPOCHS = 3.0
# The share of the training rows that are the checkpoint's own procedural questions, so that answers the new data
# never asks for are still trained ("jump" went from 3/4 to 1/4 on real CMU jumps without them).
DEFAULT_REPLAY = 0.3
# Held-out procedural questions asked before and after: what the checkpoint knew, next to the new abilities.
DEFAULT_OLD_QUESTIONS = 48
# The procedural benchmark's parameters a checkpoint's questions are regenerated from.
_PROCEDURAL_KEYS = ("num_train_motions", "num_validation_motions", "num_test_motions", "questions_per_motion",
                    "extra_train_motions", "seed", "max_frames", "procedural_realism")
PROCEDURAL_DATASET = {"name": "HuMoCon procedural motion-QA", "type": "humocon-procedural-qa", "split": "test"}


def plan_budget(rows: int, batch: int, *, epochs: float = DEFAULT_EPOCHS, max_steps: int | None = None,
                cap: int | None = None) -> dict:
    """The training budget of `rows` examples in batches of `batch` (per optimizer step, all processes): `max_steps`
    when given, else `epochs` passes over the data, at most `cap` steps (the recipe's `tune.max_steps`)."""
    per_epoch = max(1, math.ceil(rows / batch))
    capped = False
    if max_steps is not None:
        steps = int(max_steps)
    else:
        steps = max(1, math.ceil(epochs * per_epoch))
        if cap is not None and 0 < cap < steps:
            steps, capped = int(cap), True
    return {"rows": rows, "batch": batch, "steps_per_epoch": per_epoch, "steps": steps,
            "epochs": round(steps / per_epoch, 2), "capped_by_recipe": capped}


def replay_rows(new_rows: int, replay: float) -> int:
    """How many replayed rows make `replay` of the training rows next to `new_rows` of the user's."""
    return round(new_rows * replay / (1.0 - replay)) if replay > 0 else 0


def _procedural_params(source: str, recipe_obj) -> dict:
    """The procedural benchmark the checkpoint was trained on: as its own `results.json` records it (a `humocon demo`
    folder), else as the recipe's data section says."""
    data = recipe_obj.data
    params = {key: getattr(data, key) for key in _PROCEDURAL_KEYS}
    saved = Path(source).expanduser() / "results.json"
    if saved.is_file():
        try:
            recorded = (json.loads(saved.read_text(encoding="utf-8")).get("recipe") or {}).get("data") or {}
        except (ValueError, UnicodeDecodeError, AttributeError):
            recorded = {}
        params.update({k: recorded[k] for k in _PROCEDURAL_KEYS
                       if isinstance(recorded.get(k), (int, float)) and not isinstance(recorded.get(k), bool)})
    return params


def write_procedural_qa(folder: str | os.PathLike, params: dict, split: str, questions: int, seed: int = 0) -> Path:
    """`questions` questions of the procedural benchmark's `split` as a custom QA file (`<split>.jsonl`, motions in
    `motions/`, paths relative to the file): "train" draws the checkpoint's own training motions with `seed`, "test"
    takes the held-out motions in order. Each motion is regenerated on its own (a few ms), not the whole benchmark."""
    import numpy as np

    from humocon_hf.data.procedural import MotionQAGenerator, split_motion_indices
    from humocon_hf.data.procedural_realism import Realism

    n_train, n_val, n_test = (params[k] for k in ("num_train_motions", "num_validation_motions", "num_test_motions"))
    total = n_train + n_val + n_test
    indices = split_motion_indices(total, params["seed"], (n_train / total, n_val / total, n_test / total))[split]
    if split == "train":
        indices = indices + list(range(total, total + params["extra_train_motions"]))
        indices = [indices[i] for i in np.random.default_rng(seed).permutation(len(indices))]
    folder = Path(folder)
    (folder / "motions").mkdir(parents=True, exist_ok=True)
    generator = MotionQAGenerator(max_frames=params["max_frames"])
    realism = Realism.for_split(params.get("procedural_realism", 0.0), split)  # as it was trained on
    rows: list[dict] = []
    for index in indices:
        if len(rows) >= questions:
            break
        record = generator.generate(params["seed"], index, params["questions_per_motion"], realism=realism)
        motion = f"motions/{record['motion_id']}.npy"
        np.save(folder / motion, record["joints"])
        for qi, q in enumerate(record["questions"][: questions - len(rows)]):
            rows.append({"id": f"{record['motion_id']}-q{qi}", "motion": motion, "question": q["question"],
                         "answer": q["answer"], "query_type": q["query_type"], "relation_type": q["relation_type"]})
    path = folder / f"{split}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _accuracy(model, processor, model_args, rows, batch_size: int, max_new_tokens: int, bf16: bool,
              name: str = "questions") -> dict | None:
    """Exact-match accuracy (BABEL-QA normalisation) on question/answer rows; None without such rows."""
    from humocon_hf.evaluation import evaluate_motion_qa
    from humocon_hf.inference import make_answer_fn

    rows = [r for r in rows if r.get("question") and r.get("answer")]
    if not rows:
        return None
    answer = make_answer_fn(model, processor, model_args, max_new_tokens, with_motion=True, bf16=bf16,
                            progress=(name, len(rows), None))
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


def _short_name(name_or_path) -> str:
    """A checkpoint's or data file's name as a card shows it: a Hub id's last part, a file's stem, a folder's name."""
    from humocon_hf.model_card import local_name

    text = local_name(name_or_path)
    return Path(text).stem if Path(text).suffix.lower() in (".json", ".jsonl") else text


def finetuned_name(source: str, train_data) -> str:
    """The fine-tuned model's name, from the base and the data (``humocon_demo-ft-my_qa``), not the output folder."""
    return re.sub(r"[^\w.-]+", "-", f"{_short_name(source)}-ft-{_short_name(train_data)}").strip("-.")


def base_card_data(source: str) -> dict:
    """The base checkpoint's card metadata (licence, base model): its folder's README.md, or the Hub repo's card
    when it can be read; {} without one (offline, no card), where only the card's defaults are lost."""
    from huggingface_hub import ModelCard

    path = Path(source).expanduser()
    try:
        if path.is_dir():
            readme = path / "README.md"
            return ModelCard.load(readme).data.to_dict() if readme.is_file() else {}
        return ModelCard.load(source).data.to_dict()
    except (OSError, ValueError):  # huggingface_hub's HTTP and offline errors are OSErrors
        return {}


def card_base_model(source: str, base_meta: dict) -> str | None:
    """The card's `base_model`: the source's Hub id, else (a local folder) the Hub id its own card names."""
    from humocon_hf.model_card import public_name

    hub_source = public_name(source)
    if hub_source:
        return hub_source
    named = base_meta.get("base_model")
    named = named[0] if isinstance(named, list) and len(named) == 1 else named
    return public_name(named) if isinstance(named, str) else None


def hub_id_placeholder(name: str) -> str:
    """The repo id the card's usage shows until `humocon push --repo-id` puts the real one in."""
    return f"your-org/{name}"


def _card(info: dict) -> str:
    """The fine-tuned checkpoint's README (huggingface_hub `ModelCard`). It is written to be pushed: no local path
    appears in it (a local source, the data files and the command's paths are named by their last part)."""
    from huggingface_hub import ModelCard, ModelCardData
    from huggingface_hub.repocard_data import model_index_to_eval_results

    from humocon_hf.evaluation import model_index
    from humocon_hf.hub import REMOTE_CODE_PIP
    from humocon_hf.model_card import card_metadata, local_name, public_command, public_name

    name, source = info["name"], info["source"]
    shown_source = public_name(source) or local_name(source)
    eval_name = local_name(info["eval_data"]) if info.get("eval_data") else None
    pct = lambda r: "-" if not r else f"{100 * r['accuracy']:.1f}%"  # noqa: E731
    results, rows = [], []
    for key, label, dataset in (
        ("eval", f"`{eval_name}` (held out from the fine-tuning data)",
         {"name": eval_name, "type": "custom", "split": "eval"}),
        ("procedural", "HuMoCon procedural motion-QA, held-out test questions (what the base knew)", PROCEDURAL_DATASET),
    ):
        before, after = info.get(f"{key}_before"), info.get(f"{key}_after")
        if after:
            rows.append(f"| {label} | {after['questions']} | {pct(before)} | {pct(after)} |")
            results.append({"task": "motion-qa", "dataset": dataset, "metrics": {"accuracy": after["accuracy"]}})
    eval_results = model_index_to_eval_results(model_index(results, model_name=name))[1] if results else None
    base_model = info.get("base_model")
    data = ModelCardData(
        library_name="transformers", license=info.get("license"), base_model=base_model,
        base_model_relation="finetune" if base_model else None,
        tags=["humocon", "motion-understanding", "custom_code"], model_name=name if eval_results else None,
        eval_results=eval_results,
    )
    plan = info["plan"]
    replayed = info.get("replay_rows") or 0
    best = info.get("best_step")
    text = [
        f"# {name}",
        "",
        f"A HuMoCon checkpoint fine-tuned from `{shown_source}` with LoRA instruction tuning (merged) on "
        f"`{local_name(info['train_data'])}` ({info['train_rows']} examples)"
        + (f" and {replayed} of the base's own procedural training questions an epoch (new ones each epoch), "
           "replayed so that it keeps what it knew" if replayed else "")
        + f": {info['steps']} steps ({plan['epochs']:g} epochs of {plan['rows']} rows, batch {plan['batch']})"
        + (f", the checkpoint with the lowest loss on `{eval_name}` kept (step {best})" if best else "")
        + f"; {'projectors trained too' if info['train_projectors'] else 'projectors frozen'}.",
        "",
    ]
    command = public_command(info.get("command"))
    if command:
        text += [f"Command: `{command}`", ""]
    if rows:
        text += ["## Evaluation", "", "Accuracy: exact match after BABEL-QA answer normalisation.", "",
                 f"| | questions | before (`{shown_source}`) | after |", "|---|---|---|---|", *rows, ""]
    repo = hub_id_placeholder(name)
    text += [
        "## Usage",
        "",
        "```python",
        "from transformers import AutoModel, AutoProcessor",
        "",
        f'model = AutoModel.from_pretrained("{repo}", trust_remote_code=True)  # or the path of this folder',
        f'processor = AutoProcessor.from_pretrained("{repo}", trust_remote_code=True)',
        "```",
        "",
        f"The checkpoint's own code needs only `{REMOTE_CODE_PIP}`; with `pip install humocon-hf`, "
        f"`trust_remote_code` is not needed and `humocon ask --model {repo} --motion walk.bvh \"What is the person "
        "doing?\"` answers with the chat settings it was tuned with (`humocon_chat.json`).",
        "",
        "## Licence",
        "",
        (f"`{info['license']}` ({info['license_from']}). " if info.get("license") else "No licence was given. ")
        + "The fine-tuning data's own terms may restrict the use of this model further.",
        "",
    ]
    return str(ModelCard(f"---\n{card_metadata(data)}---\n\n" + "\n".join(text)))


def _progress_callback(plan: dict, eval_name: str | None):
    """Prints the time the training will take, measured on its second step (the first one warms up), and the loss on
    the held-out answers at each evaluation."""
    from transformers import TrainerCallback

    from humocon_hf.io_utils import say

    class FinetuneProgress(TrainerCallback):
        start_step, started = 0, 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.start_step = state.global_step

        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            done = state.global_step - self.start_step
            left = state.max_steps - state.global_step
            if done == min(2, plan["steps"]) and left > 0 and state.is_world_process_zero:
                per_step = time.perf_counter() - self.started
                say(f"  measured {per_step:.2f} s a step: about {_duration(per_step * left)} for the {left} steps left")
            if left <= 0 and args.eval_strategy != "no":
                control.should_evaluate = True  # the last steps compete for the best checkpoint too

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics and "eval_loss" in metrics and state.is_world_process_zero:
                say(f"  step {state.global_step}/{state.max_steps}: loss on the answers of {eval_name} "
                    f"{metrics['eval_loss']:.4f}")

    return FinetuneProgress()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s" if minutes else (f"{secs} s" if secs else "under 1 s")


def finetune(
    model_name_or_path: str,
    train_data: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    eval_data: str | os.PathLike | None = None,
    epochs: float = DEFAULT_EPOCHS,
    max_steps: int | None = None,
    replay: float = DEFAULT_REPLAY,
    old_questions: int = DEFAULT_OLD_QUESTIONS,
    license: str | None = None,
    recipe: str = "small",
    overrides: dict[str, dict[str, Any]] | None = None,
    steps_scale: float = 1.0,
    trust_remote_code: bool = False,
    command: str | None = None,
) -> dict:
    """Fine-tune `model_name_or_path` (a HuMoCon checkpoint folder or Hub id) on `train_data` (a custom QA file as
    `load_custom_qa` reads it) with the recipe's `tune` section (LoRA, learning rate, batch size, `train_projectors`).

    The budget follows the data: `epochs` passes over the training rows, at most the recipe's `tune.max_steps`
    (scaled by `steps_scale`), or exactly `max_steps`. `replay` of the training rows are the checkpoint's own
    procedural training questions, regenerated (0: none). With `eval_data`, the checkpoint with the lowest loss on its
    answers is kept. Accuracy on `eval_data` and on `old_questions` held-out procedural questions is measured before
    and after. `license` (default: the base card's) goes into the card. Writes the merged checkpoint, its processor,
    chat settings (`humocon_chat.json`), a model card and `finetune.json` to `output_dir`; returns `finetune.json`."""
    from datasets import concatenate_datasets

    from humocon_hf.data import load_custom_qa
    from humocon_hf.hub import save_for_remote_code
    from humocon_hf.inference import load_checkpoint, qa_collator, write_chat_defaults
    from humocon_hf.io_utils import say, write_json_atomic
    from humocon_hf.model_card import local_name, public_name
    from humocon_hf.pipeline.runner import seed_before_init, train_info, train_resuming
    from humocon_hf.recipes import load_recipe
    from humocon_hf.training.instruction_tuning import (
        build_instruction_tuning_trainer,
        merge_adapter,
    )

    if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or not (epochs > 0 and math.isfinite(epochs)):
        raise ValueError(f"epochs (--epochs) must be a positive number, got {epochs!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"max_steps (--max-steps) must be a positive integer, got {max_steps!r}")
    if isinstance(replay, bool) or not isinstance(replay, (int, float)) or not 0 <= replay < 1:
        raise ValueError(f"replay (--replay) must be a share of the training rows in [0, 1), got {replay!r}")
    if isinstance(old_questions, bool) or not isinstance(old_questions, int) or old_questions < 0:
        raise ValueError(f"old_questions (--old-questions) must be a non-negative integer, got {old_questions!r}")

    out = Path(output_dir).expanduser().resolve()
    recipe_obj = load_recipe(recipe, overrides)
    if steps_scale != 1.0:
        recipe_obj = recipe_obj.scaled(steps_scale)
    fingerprint = {"source": model_name_or_path, "train_data": _file_fingerprint(train_data),
                   "eval_data": None if eval_data is None else _file_fingerprint(eval_data),
                   "model": recipe_obj.sections.get("model"), "tune": recipe_obj.sections.get("tune"),
                   "epochs": epochs, "max_steps": max_steps, "replay": replay, "old_questions": old_questions,
                   "license": license}
    done = out / FINETUNE_INFO
    if done.is_file() and (out / "config.json").is_file():
        previous = json.loads(done.read_text())
        if previous.get("fingerprint") == json.loads(json.dumps(fingerprint, default=str)):
            return previous  # the same fine-tuning finished before: nothing to redo
    targs, _ = recipe_obj.training_args("tune", output_dir=out / "checkpoints")
    train = load_custom_qa(str(train_data), require_answer=True)  # a record without an answer trains on nothing
    if len(train) == 0:
        raise ValueError(f"{train_data}: no usable training examples")
    eval_set = load_custom_qa(str(eval_data)) if eval_data is not None else None
    eval_rows = list(eval_set) if eval_set is not None else []
    answered = [i for i, r in enumerate(eval_rows) if r.get("answer")]

    params = _procedural_params(model_name_or_path, recipe_obj)
    n_replay = replay_rows(len(train), replay)  # an epoch: the user's rows and this many procedural questions
    batch = targs.per_device_train_batch_size * targs.gradient_accumulation_steps * max(1, targs.world_size)
    plan = plan_budget(len(train) + n_replay, batch, epochs=epochs, max_steps=max_steps,
                       cap=targs.max_steps if targs.max_steps > 0 else None)
    rows = train
    if n_replay:
        # New procedural questions each epoch: the same few replayed every epoch are learnt by heart and keep nothing
        # (the demo, 16 CMU speed questions, 10 epochs: 48 held-out procedural questions 83.3% -> 45.8% with the same
        # 7 each epoch, 72.9% with no replay, 77.1% with new ones).
        passes = math.ceil(plan["steps"] / plan["steps_per_epoch"])
        path = write_procedural_qa(out / PROCEDURAL_DIR, params, "train", n_replay * passes, targs.seed)
        replayed = load_custom_qa(str(path), require_answer=True)
        if len(replayed) < n_replay * passes:  # more than the benchmark holds: some come again
            replayed = replayed.select([i % len(replayed) for i in range(n_replay * passes)])
        rows = concatenate_datasets([train] * passes + [replayed])
    old_rows = (list(load_custom_qa(str(write_procedural_qa(out / PROCEDURAL_DIR, params, "test", old_questions))))
                if old_questions else [])
    budget: dict[str, Any] = {"max_steps": plan["steps"]}
    if targs.warmup_steps >= 1:  # the recipe's 10 warm-up steps would be all of a 9-step run on 16 rows
        budget["warmup_steps"] = min(int(targs.warmup_steps), plan["steps"] // 10)
    if answered:  # evaluate at each save, keep the best: transformers' load_best_model_at_end on the loss
        every = min(plan["steps_per_epoch"], int(targs.save_steps)) if targs.save_steps >= 1 else plan["steps_per_epoch"]
        budget.update(eval_strategy="steps", eval_steps=every, save_steps=every, load_best_model_at_end=True,
                      metric_for_best_model="eval_loss", greater_is_better=False, prediction_loss_only=True)
    targs, tune_args = recipe_obj.training_args("tune", output_dir=out / "checkpoints", **budget)

    shown_source = public_name(model_name_or_path) or local_name(model_name_or_path)
    eval_name = local_name(eval_data) if eval_data is not None else None
    say(f"fine-tuning {shown_source} on {local_name(train_data)}: {len(train)} rows"
        + (f" + {n_replay} of its own procedural training questions an epoch, new ones each epoch ({replay:.0%} of "
           "the rows; --replay 0 turns that off)" if n_replay else "")
        + f"; batch {batch}, {plan['steps_per_epoch']} steps an epoch: {plan['steps']} steps = {plan['epochs']:g} "
        f"epochs" + (" (the recipe's tune.max_steps)" if plan["capped_by_recipe"] else "")
        + "; the time it takes is measured on the first steps")
    if answered:
        say(f"  the loss on the answers of {eval_name} is measured every {budget['eval_steps']} steps and the best "
            "checkpoint kept")

    model, processor, defaults = load_checkpoint(model_name_or_path, trust_remote_code=trust_remote_code)
    model_args = recipe_obj.model
    # Ask the questions the way the checkpoint was tuned (its system prompt), unless the recipe overrides it.
    if overrides is None or "system_prompt" not in (overrides.get("model") or {}):
        model_args.system_prompt = defaults.get("system_prompt", model_args.system_prompt)
    ev = recipe_obj.evaluate
    max_new_tokens = defaults.get("max_new_tokens") or ev.max_new_tokens
    # Evaluate (and record in the chat settings for `humocon ask`) as the tune stage trains: under bf16 autocast where
    # the recipe asks for bf16 and the machine has it (`generation_autocast` checks the machine), as the demo's
    # pipeline does (`generation_bf16`).
    bf16 = bool(recipe_obj.sections["tune"].get("bf16"))
    base_meta = base_card_data(model_name_or_path)
    chosen_license = license or base_meta.get("license")

    info: dict[str, Any] = {
        "fingerprint": fingerprint, "name": finetuned_name(model_name_or_path, train_data),
        "source": model_name_or_path, "base_model": card_base_model(model_name_or_path, base_meta),
        "license": chosen_license,
        "license_from": "given for this fine-tuning" if license else ("the base checkpoint's licence"
                                                                       if chosen_license else None),
        "train_data": str(train_data), "train_rows": len(train), "replay_rows": n_replay,
        "eval_data": None if eval_data is None else str(eval_data), "output_dir": str(out), "command": command,
        "plan": plan, "train_projectors": bool(tune_args.train_projectors), "lora_dropout": tune_args.lora.get("lora_dropout", 0.0),
        "system_prompt": model_args.system_prompt,
    }
    if not chosen_license:
        say("  note: no licence: the base checkpoint's card names none; give one with --license (license=...)")

    def measure(when: str, net) -> None:
        what = [f"{len(answered)} questions of {eval_name}"] if answered else []
        what += [f"{len(old_rows)} held-out procedural questions (what the base knew)"] if old_rows else []
        if not what:
            return
        say(f"{when} fine-tuning: answering {' and '.join(what)}")
        net.eval()
        for key, questions, name in (("eval", eval_rows, eval_name), ("procedural", old_rows, "procedural")):
            if questions:
                info[f"{key}_{when}"] = _accuracy(net, processor, model_args, questions, ev.batch_size,
                                                  max_new_tokens, bf16, name=f"{name} ({when})")

    measure("before", model)
    seed_before_init(targs.seed)
    trainer = build_instruction_tuning_trainer(
        model, targs, processor, rows, qa_collator(processor, model_args), tune_args,
        eval_dataset=eval_set.select(answered) if answered else None, callbacks=[_progress_callback(plan, eval_name)],
    )
    metrics = train_resuming(trainer, targs.output_dir)
    info.update(train_info(trainer, metrics))
    best = trainer.state.best_model_checkpoint
    if best:
        info["best_step"] = int(Path(best).name.rsplit("-", 1)[-1])
        info["best_eval_loss"] = trainer.state.best_metric
        say(f"  kept the checkpoint of step {info['best_step']} (loss {trainer.state.best_metric:.4f} on {eval_name})")
    merged = merge_adapter(trainer.model).eval()
    measure("after", merged)
    save_for_remote_code(merged, out, processor=processor)
    write_chat_defaults(out, model_args.system_prompt, max_new_tokens, bf16)
    (out / "README.md").write_text(_card(info), encoding="utf-8")
    summary = dict(info)
    for key in ("eval_before", "eval_after", "procedural_before", "procedural_after"):
        if summary.get(key):
            summary[key] = {k: v for k, v in summary[key].items() if k != "predictions"}
    write_json_atomic(out / FINETUNE_INFO, summary)
    if answered or old_rows:
        write_json_atomic(out / "finetune_predictions.json",
                          {k: (info.get(k) or {}).get("predictions")
                           for k in ("eval_before", "eval_after", "procedural_before", "procedural_after")})
    return json.loads((out / FINETUNE_INFO).read_text())


__all__ = ["DEFAULT_EPOCHS", "DEFAULT_OLD_QUESTIONS", "DEFAULT_REPLAY", "FINETUNE_INFO", "base_card_data",
           "finetune", "finetuned_name", "plan_budget", "write_procedural_qa"]
