"""How the LLM stages compute on this machine, decided once (`llm_precision`), and whether the CPU has native bf16.

A module of its own so that `humocon ask` can ask it without importing `humocon_hf.recipes` (whose
`TrainingArguments` import pulls in transformers' trainer utilities and peft)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

# `HUMOCON_CPU_BF16=0` makes a CPU with native bf16 behave as one without (the float32 path most laptops and older
# servers take), so that path can be timed and tested anywhere.
CPU_BF16_ENV = "HUMOCON_CPU_BF16"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 / AMX): then CPU autocast is about twice as fast.
    False when `HUMOCON_CPU_BF16` is 0 / false / no / off."""
    import torch

    if os.environ.get(CPU_BF16_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return False

    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, name, None)
        if check is not None and check():
            return True
    return False


@dataclass(frozen=True)
class LLMPrecision:
    """What a training section's `bf16` becomes on this machine: one recipe runs on a GPU box and on a laptop."""

    name: str  # as the demo's summary prints it
    training_changes: dict = field(default_factory=dict)  # what `TrainingArguments` need here: {}, use_cpu, bf16=False
    bf16: bool = False  # whether the LLM stages compute under bf16
    float32_fallback: bool = False  # bf16 asked for, float32 given (a CPU without native bf16)


def llm_precision(section: Mapping) -> LLMPrecision:
    """`bf16: true` on a GPU stays bf16; without a GPU it becomes CPU autocast (`use_cpu`) where the CPU has native
    bf16, else float32 (`bf16: False`); a section that sets `use_cpu` itself keeps it. fp16 stays as asked (GPU)."""
    import torch

    if not section.get("bf16"):
        return LLMPrecision("float32")
    if section.get("use_cpu"):
        return LLMPrecision("bf16 autocast (CPU, use_cpu)", bf16=True)
    if torch.cuda.is_available():
        return LLMPrecision("bf16 (GPU)", bf16=True)
    if cpu_has_bf16():
        return LLMPrecision("bf16 autocast (CPU with native bf16)", {"use_cpu": True}, bf16=True)
    return LLMPrecision("float32 (this CPU has no native bf16)", {"bf16": False}, float32_fallback=True)


__all__ = ["CPU_BF16_ENV", "LLMPrecision", "cpu_has_bf16", "llm_precision"]
