"""A machine reference for every timing: how fast this machine multiplies matrices of the LLM's shapes right now.

A wall time alone cannot say whether the code got faster or the (shared) machine slower: the same commit's demo took
9 min 36 s one day and ~15 min another. So the demo measures, in a couple of seconds, the GEMM rate at the shapes of
its LLM's linear layers (bf16 and float32; one thread, the run's threads and every core), records it beside the stage
times in `results.json["machine_reference"]`, and states stage 3's achieved model FLOP/s as a fraction of it, per
thread count (`results.json["tune_fraction_of_reference"]`) and against the thread counts its steps ran on
(`results.json["tune_fraction_of_threads_used"]`). `benchmarks/bench_stage3_step.py` reports the same fraction.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Mapping, Sequence

REFERENCE_NAME = "gemm_llm_shapes_v1"

__all__ = ["REFERENCE_NAME", "StepFlopCounter", "calibrate_machine", "fraction_of_reference", "fraction_of_threads_used",
           "lora_step_flops", "usable_cores"]


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS says it, else os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _gemm_rate(dtype, threads: int, shapes: Sequence[tuple[int, int, int]], seconds: float) -> float:
    """Best-of-repeats FLOP/s of x @ w over ``shapes`` (m, k, n) in ``dtype`` on ``threads`` threads."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        mats = [(torch.randn(m, k, generator=gen).to(dtype), torch.randn(k, n, generator=gen).to(dtype))
                for m, k, n in shapes]
        flops = sum(2 * m * k * n for m, k, n in shapes)
        for x, w in mats:  # warm-up: kernels picked, caches filled
            x @ w
        best = float("inf")
        deadline = time.perf_counter() + seconds
        while True:
            start = time.perf_counter()
            for x, w in mats:
                x @ w
            best = min(best, time.perf_counter() - start)
            if time.perf_counter() > deadline:
                break
        return flops / best
    finally:
        torch.set_num_threads(previous)


def calibrate_machine(hidden_size: int = 576, intermediate_size: int = 1536, tokens: int = 512,
                      threads: Sequence[int] | None = None, seconds: float = 0.3) -> dict:
    """The GEMM rate (GFLOP/s) at an LLM's linear-layer shapes, a batch of ``tokens`` rows (stage 3: 8 prompts of
    ~62 tokens): bf16 and float32, on each of ``threads`` (default: one thread, torch's threads now and every usable
    core, so that a stage that changes its thread count midway, as stage 3 does when the text-only baseline beside it
    ends, is compared with what each of its thread counts could do). About 2 x len(threads) x ``seconds`` of wall
    time."""
    import torch

    if threads is None:
        threads = sorted({1, torch.get_num_threads(), usable_cores()})
    shapes = [(tokens, hidden_size, hidden_size), (tokens, hidden_size, intermediate_size),
              (tokens, intermediate_size, hidden_size)]
    rates = {}
    for name, dtype in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
        rates[name] = {str(n): float(f"{_gemm_rate(dtype, n, shapes, seconds) / 1e9:.4g}") for n in threads}
    return {"name": REFERENCE_NAME, "gflops": rates, "shapes_mkn": [list(shape) for shape in shapes], "torch": torch.__version__,
            "machine": platform.machine(), "processor": platform.processor() or None}


def lora_step_flops(text_config, batch: int, seq_len: int, head_tokens: int, trainable_params: int = 0) -> float:
    """Model FLOPs of one training step of a LLaMA-style decoder whose weights are frozen except ``trainable_params``
    (LoRA, projectors) on ``batch`` rows of ``seq_len`` tokens: the forward (linear layers, attention scores and
    values), the LM head on the ``head_tokens`` supervised positions only (as `supervised_positions_loss` computes
    it), the backward's activation gradients (as many FLOPs as the forward's linear layers, twice the attention's),
    and forward + both gradients of the trainable weights. Matches `torch.utils.flop_counter` on such a step; the
    motion encoder is left out (under 2% of a stage-3 step at the demo's sizes)."""
    h = text_config.hidden_size
    heads = text_config.num_attention_heads
    kv = getattr(text_config, "num_key_value_heads", None) or heads
    head_dim = getattr(text_config, "head_dim", None) or h // heads
    layers = text_config.num_hidden_layers
    tokens = batch * seq_len
    decoder = layers * (h * head_dim * (2 * heads + 2 * kv) + 3 * h * text_config.intermediate_size)
    attention = layers * 4 * seq_len * heads * head_dim  # QK^T and attention x V, per token
    head = h * text_config.vocab_size
    return 4 * decoder * tokens + 3 * attention * tokens + 4 * head * head_tokens + 6 * trainable_params * tokens


def fraction_of_reference(flops_per_second: float, reference: Mapping, threads: int,
                          dtype: str = "bfloat16") -> float | None:
    """``flops_per_second`` as a fraction of the reference's GEMM rate in ``dtype`` on ``threads`` threads (None when
    the reference did not measure that thread count)."""
    rate = (reference.get("gflops", {}).get(dtype) or {}).get(str(threads))
    return None if not rate else round(flops_per_second / (rate * 1e9), 3)


def fraction_of_threads_used(flops_per_second: float, reference: Mapping, seconds_by_threads: Mapping[str, float],
                             dtype: str = "bfloat16") -> float | None:
    """``flops_per_second`` as a fraction of what the reference could do on the thread counts a stage actually ran on,
    each weighted by the seconds spent on it (``seconds_by_threads``: {"1": 415.0, "2": 290.0}): a stage that trained
    on one thread while another ran beside it, then on two, is held to that mix, not to either count alone. None
    when a thread count used was not measured."""
    rates = reference.get("gflops", {}).get(dtype) or {}
    total = sum(seconds_by_threads.values())
    if not total or any(not rates.get(str(t)) for t in seconds_by_threads):
        return None
    expected = sum(rates[str(t)] * 1e9 * sec for t, sec in seconds_by_threads.items()) / total
    return round(flops_per_second / expected, 3)


class StepFlopCounter:
    """Wraps a stage-3 data collator and adds up the model FLOPs of every batch it makes (:func:`lora_step_flops` on
    the batch's real shape and supervised positions), so a stage reports its achieved FLOP/s, padding included."""

    def __init__(self, collator, text_config, trainable_params: int = 0):
        self.collator, self.text_config, self.trainable_params = collator, text_config, trainable_params
        self.batches = self.tokens = 0
        self.flops = 0.0
        self.steps = 0  # optimizer steps trained in this session (the dataloader makes a batch ahead of them)
        self.seconds_by_threads: dict[str, float] = {}  # wall seconds of those steps per torch thread count

    def callback(self):
        """A `TrainerCallback` counting the optimizer steps this session trains and the seconds they take on each
        thread count (stage 3 runs on fewer threads while the text-only baseline trains beside it), to pass to the
        Trainer."""
        import torch
        from transformers import TrainerCallback

        counter = self

        class _CountSteps(TrainerCallback):
            started = None

            def on_step_begin(self, args, state, control, **kwargs):
                self.started = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                counter.steps += 1
                if self.started is not None:
                    key = str(torch.get_num_threads())
                    counter.seconds_by_threads[key] = (counter.seconds_by_threads.get(key, 0.0)
                                                       + time.perf_counter() - self.started)

        return _CountSteps()

    def __call__(self, features):
        batch = self.collator(features)
        ids, labels = batch["input_ids"], batch.get("labels")
        rows, seq_len = ids.shape
        head = int((labels[:, 1:] != -100).sum()) if labels is not None else rows * seq_len
        self.flops += lora_step_flops(self.text_config, rows, seq_len, head, self.trainable_params)
        self.batches += 1
        self.tokens += rows * seq_len
        return batch

    def report(self, runtime_s: float | None, reference: Mapping | None, batches_per_step: int = 1) -> dict:
        """What the stage's info records: FLOPs of the batches trained in this session (the mean batch times the
        steps' batches), tokens, and the achieved rate against ``reference``: per precision and thread count, and
        against the mix of thread counts the steps ran on (``fraction_of_threads_used``, the number to compare)."""
        trained = min(self.batches, self.steps * batches_per_step)
        flops = self.flops / self.batches * trained if self.batches else 0.0
        out = {"model_flops": flops, "batches": trained,
               "tokens_per_batch": round(self.tokens / self.batches, 1) if self.batches else None}
        if runtime_s and trained and reference:
            rate = flops / runtime_s
            out["achieved_gflops"] = round(rate / 1e9, 1)
            out["fraction_of_reference"] = {
                dtype: {threads: fraction_of_reference(rate, reference, int(threads), dtype)
                        for threads in per_thread}
                for dtype, per_thread in reference["gflops"].items()}
            if self.seconds_by_threads:
                out["seconds_by_threads"] = {t: round(sec, 1) for t, sec in sorted(self.seconds_by_threads.items())}
                out["fraction_of_threads_used"] = {
                    dtype: fraction_of_threads_used(rate, reference, self.seconds_by_threads, dtype)
                    for dtype in reference["gflops"]}
        return out
