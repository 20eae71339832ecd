"""`humocon_hf.finetune.finetune` evaluates and records bf16 as the recipe's tune stage asks (issue 29): it read
the changes a CPU makes to the training arguments (`LLMPrecision.training_changes`), never `bf16: True`, so it always evaluated in float32 and wrote `bf16: false`."""

import json

import pytest
from humocon_tiny import build_tiny_checkpoint, write_motion_file


def qa_file(folder, motion, answer: str, n: int) -> str:
    rows = [{"motion_path": str(motion), "question": "What is the person doing?", "answer": answer} for _ in range(n)]
    path = folder / f"qa_{answer}_{n}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


@pytest.mark.parametrize("bf16", [True, False])
def test_finetune_evaluates_and_records_the_recipes_bf16(tmp_path, smollm2_tokenizer_dir, monkeypatch, bf16):
    import humocon_hf.inference as inference
    from humocon_hf.finetune import finetune

    seen = []
    original = inference.make_answer_fn

    def recording(*args, **kwargs):
        seen.append(kwargs.get("bf16"))
        return original(*args, **kwargs)

    monkeypatch.setattr(inference, "make_answer_fn", recording)
    source = build_tiny_checkpoint(tmp_path, smollm2_tokenizer_dir)
    motion = write_motion_file(tmp_path)
    out = tmp_path / "ft"
    overrides = {"tune": {"max_steps": 1, "per_device_train_batch_size": 2, "save_steps": 1, "logging_steps": 1,
                          "warmup_steps": 0, "bf16": bf16}}
    finetune(str(source), qa_file(tmp_path, motion, "jump", 2), out, eval_data=qa_file(tmp_path, motion, "jump", 1),
             overrides=overrides, old_questions=2)
    assert seen == [bf16] * 4  # before and after fine-tuning: the eval file, the held-out procedural questions
    assert json.loads((out / "humocon_chat.json").read_text())["bf16"] is bf16
