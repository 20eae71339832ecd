"""Whether this machine computes bf16 natively: a module of its own so that `humocon ask` can ask it without importing
`humocon_hf.recipes` (whose `TrainingArguments` import pulls in transformers' trainer utilities and peft)."""

from __future__ import annotations

import os

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


__all__ = ["CPU_BF16_ENV", "cpu_has_bf16"]
