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
