"""The machine reference: the GEMM calibration's shape, and the stage-3 FLOP count checked against torch's own counter."""

from __future__ import annotations

import pytest
import torch

from humocon_hf.calibration import REFERENCE_NAME, calibrate_machine, fraction_of_reference, lora_step_flops


def test_calibration_measures_both_precisions_per_thread_count():
    reference = calibrate_machine(hidden_size=64, intermediate_size=128, tokens=32, threads=[1], seconds=0.02)
    assert reference["name"] == REFERENCE_NAME and reference["shapes_mkn"][1] == [32, 64, 128]
    assert set(reference["gflops"]) == {"bfloat16", "float32"}
    assert all(rate["1"] > 0 for rate in reference["gflops"].values())
    flops = reference["gflops"]["float32"]["1"] * 1e9 / 2
    assert fraction_of_reference(flops, reference, threads=1, dtype="float32") == pytest.approx(0.5)
    assert fraction_of_reference(flops, reference, threads=2) is None  # not measured: no guess
    assert torch.get_num_threads() >= 1  # the thread count is given back


@pytest.mark.parametrize("head_positions", [None, 3])
def test_step_flops_match_torch_flop_counter(head_positions):
    """A frozen decoder with trainable input activations (what LoRA and the projectors make of stage 3), logits on
    every position or on the supervised ones only: the formula equals torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=300, tie_word_embeddings=True)
    config._attn_implementation = "eager"
    model = LlamaForCausalLM(config).requires_grad_(False)
    batch, seq_len = 3, 11
    ids = torch.randint(0, 300, (batch, seq_len))
    embeds = model.model.embed_tokens(ids).requires_grad_(True)
    keep = torch.zeros(batch, seq_len, dtype=torch.bool)
    if head_positions:
        keep[:, -head_positions:] = True
    with FlopCounterMode(display=False) as counter:
        out = model(inputs_embeds=embeds, logits_to_keep=keep if head_positions else 0)
        out.logits.float().sum().backward()
    head_tokens = batch * (head_positions or seq_len)
    assert lora_step_flops(config, batch, seq_len, head_tokens) == counter.get_total_flops()


def test_default_calibration_covers_one_thread_and_every_usable_core(monkeypatch):
    import humocon_hf.calibration as calibration

    monkeypatch.setattr(calibration, "usable_cores", lambda: 3)
    measured = []
    monkeypatch.setattr(calibration, "_gemm_rate", lambda dtype, n, shapes, seconds: measured.append(n) or 1e9)
    reference = calibrate_machine(hidden_size=8, intermediate_size=16, tokens=4)
    assert set(reference["gflops"]["bfloat16"]) == {"1", str(torch.get_num_threads()), "3"}
    assert sorted(set(measured)) == sorted({1, torch.get_num_threads(), 3})


def test_fraction_of_threads_used_weights_each_thread_count_by_its_seconds():
    from humocon_hf.calibration import fraction_of_threads_used

    reference = {"gflops": {"bfloat16": {"1": 100.0, "2": 200.0}}}
    # 300 s on one thread (100 GFLOP/s possible), 100 s on two (200): 125 GFLOP/s possible on average
    assert fraction_of_threads_used(62.5e9, reference, {"1": 300.0, "2": 100.0}) == pytest.approx(0.5)
    assert fraction_of_threads_used(100e9, reference, {"2": 10.0}) == pytest.approx(0.5)
    assert fraction_of_threads_used(1e9, reference, {"4": 10.0}) is None  # a thread count never measured: no guess
    assert fraction_of_threads_used(1e9, reference, {}) is None


def test_step_counter_reports_seconds_and_fraction_per_thread_count():
    """The callback times each optimizer step on the thread count it ran on; the report holds the stage to that mix."""
    from humocon_hf.calibration import StepFlopCounter

    counter = StepFlopCounter(lambda features: features, text_config=None)
    callback = counter.callback()
    previous = torch.get_num_threads()
    try:
        for threads in (1, 1, 2):
            torch.set_num_threads(threads)
            callback.on_step_begin(None, None, None)
            callback.on_step_end(None, None, None)
    finally:
        torch.set_num_threads(previous)
    assert counter.steps == 3 and set(counter.seconds_by_threads) == {"1", "2"}
    counter.batches, counter.flops, counter.tokens = 3, 3e9, 30
    counter.seconds_by_threads = {"1": 2.0, "2": 1.0}
    reference = {"gflops": {"bfloat16": {"1": 1.0, "2": 2.0}, "float32": {"1": 0.5, "2": 1.0}}}
    report = counter.report(3.0, reference)
    assert report["achieved_gflops"] == 1.0 and report["seconds_by_threads"] == {"1": 2.0, "2": 1.0}
    # possible: (2 s x 1 + 1 s x 2) / 3 s = 4/3 GFLOP/s in bf16, 2/3 in float32
    assert report["fraction_of_threads_used"] == {"bfloat16": pytest.approx(0.75), "float32": pytest.approx(1.5)}
