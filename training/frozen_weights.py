"""The LLM's frozen linear weights held in the autocast dtype while a bf16-autocast training stage runs.

Autocast caches its bf16 copy of a weight only for leaves that require grad; a frozen weight is cast again at every
use. For the frozen LLM of stages 2 and 3 that is a float32 -> bf16 copy of the whole decoder at every step. Held in
bf16, the matrix products read exactly the values they read before (the same cast, done once), so training is
unchanged bit for bit (tests/test_instruction_tuning.py); only the copies go: 1.20x on the isolated stage-3 step
(`benchmarks/bench_stage3_step.py`, [frozen weights]), 1.07x in the demo's real stage-3 trainer (README). HF users
get the speed by loading the LLM in bf16; here the float32 originals stay the model's weights: they are put back for
every checkpoint save and when training ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["FrozenLinearWeightsInDtype"]


class FrozenLinearWeightsInDtype:
    """Context manager: within `module`, every `nn.Linear` weight that is float32, frozen (`requires_grad=False`) and
    not shared with an embedding holds a `dtype` copy until exit.

    Only worth it under autocast to `dtype` (outside autocast a float32 input would meet a bf16 weight). Embeddings
    (and an LM head tied to them) keep float32: lookups are not autocast, and the residual stream would drop to
    bf16. `originals()` puts the float32 weights back for a while (checkpoint saves)."""

    def __init__(self, module: nn.Module, dtype: torch.dtype = torch.bfloat16):
        self.module, self.dtype = module, dtype
        self._swapped: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]] = []  # (weight, float32, low precision)

    def _candidates(self) -> Iterator[nn.Parameter]:
        embedded = {id(m.weight) for m in self.module.modules() if isinstance(m, nn.Embedding)}
        seen = set()
        for m in self.module.modules():
            if not isinstance(m, nn.Linear):
                continue
            w = m.weight
            if id(w) in seen or id(w) in embedded or w.dtype != torch.float32 or w.is_meta or w.requires_grad:
                continue
            seen.add(id(w))
            yield w

    def _put(self, which: int) -> None:
        """Point every swapped weight at its float32 original (1) or its low-precision copy (2)."""
        for entry in self._swapped:
            entry[0].data = entry[which]

    def __enter__(self) -> FrozenLinearWeightsInDtype:
        self._swapped = [(w, w.data, w.data.to(self.dtype)) for w in self._candidates()]
        self._put(2)
        return self

    def __exit__(self, *exc) -> None:
        self._put(1)
        self._swapped = []

    @property
    def num_weights(self) -> int:
        return len(self._swapped)

    @contextlib.contextmanager
    def originals(self) -> Iterator[None]:
        """The float32 weights back in place for the duration (a checkpoint saves the model's real weights)."""
        self._put(1)
        try:
            yield
        finally:
            self._put(2)
