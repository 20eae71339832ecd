"""`humocon evaluate --model DIR`: any checkpoint on a recipe's held-out questions, as the pipeline's evaluate stage
asks them (the benchmark's split, the real lines, the extra lines)."""

from __future__ import annotations

from pathlib import Path

from humocon_hf.io_utils import say, write_json_atomic
from humocon_hf.pipeline.data import extra_line_questions, heldout_line_questions, load_stored_data
from humocon_hf.pipeline.reporting import EXTRA_LINES, format_real_lines, real_lines_summary


def evaluate_real_lines(answer, lines: list[dict], name: str, batch_size: int) -> dict:
    """`evaluate_motion_qa` on the questions of a held-out line (real takes, vocabulary clips, sequences)."""
    from humocon_hf.evaluation import evaluate_motion_qa

    return evaluate_motion_qa(answer, lines, batch_size=batch_size, model_name=name,
                              dataset_name="Real mocap, held-out actors / styles / subjects",
                              dataset_type="real-mocap", split="held-out")


def evaluate_checkpoint(pipeline, model_dir: str) -> dict:
    """Any checkpoint on the pipeline's recipe: its held-out split (with the motion) and its real lines (the held-out
    real takes; `evaluation_<name>_real.json`). Runs the data stage first where it has not run."""
    from humocon_hf.evaluation import evaluate_motion_qa, format_table, write_results
    from humocon_hf.inference import load_checkpoint, make_answer_fn

    pipeline.root.mkdir(parents=True, exist_ok=True)
    pipeline.runner.run("data", pipeline.data_fingerprint(), pipeline.stage_data)
    data_dir = pipeline.runner.stage_dir("data")
    ev = pipeline.recipe.evaluate
    qa, _ = load_stored_data(data_dir)
    split = qa[ev.split]
    model, processor, defaults = load_checkpoint(model_dir)
    model_args = pipeline.recipe.model
    if defaults.get("system_prompt") is not None:
        model_args.system_prompt = defaults["system_prompt"]
    n = len(split) if ev.max_samples is None else min(ev.max_samples, len(split))
    answer = make_answer_fn(model, processor, model_args, ev.max_new_tokens, True,
                            progress=(Path(model_dir).name, n, ev.batch_size), bf16=bool(defaults.get("bf16")),
                            constrain_options=ev.constrain_options)
    result = evaluate_motion_qa(answer, split, batch_size=ev.batch_size, limit=ev.max_samples,
                                model_name=str(model_dir), dataset_name="HuMoCon procedural motion-QA",
                                dataset_type="humocon-procedural-qa", split=ev.split)
    paths = write_results(result, pipeline.root, stem=f"evaluation_{Path(model_dir).name or 'model'}")
    say(format_table(result))
    lines = heldout_line_questions(data_dir)
    if lines:  # the real lines: the recipe's held-out real takes, asked the same questions as the demo asks
        real = evaluate_real_lines(answer, lines, str(model_dir), ev.batch_size)
        result["real_lines"] = real_lines_summary([{"real_model": real, "real_questions": lines}])
        write_json_atomic(pipeline.root / f"evaluation_{Path(model_dir).name or 'model'}_real.json", real)
        say(format_real_lines(result["real_lines"]))
    for name, (_, title) in EXTRA_LINES.items():  # procedural vocabulary clips, real takes in sequence
        questions = extra_line_questions(data_dir, name)
        if questions:
            asked = evaluate_real_lines(answer, questions, str(model_dir), ev.batch_size)
            result[f"{name}_line"] = real_lines_summary([{"real_model": asked, "real_questions": questions}])
            write_json_atomic(pipeline.root / f"evaluation_{Path(model_dir).name or 'model'}_{name}.json", asked)
            say(format_real_lines(result[f"{name}_line"], title=title))
    say("written: " + ", ".join(str(p) for p in paths.values()))
    return result
