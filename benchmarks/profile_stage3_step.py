"""Where the demo's stage-3 step spends its time, by part of the model, and how far its matrix products are from the
machine's GEMM rate: the profile behind `bench_stage3_step.py`'s fraction of the machine reference (issue 31).

The step as stage 3 trains it: SmolLM2-135M shape, LoRA rank 8 on the attention projections, projectors training,
bf16 autocast with the frozen linear weights held in bf16 (`FrozenLinearWeightsInDtype`), loss on the answer positions
only, batches of 8 prompts of 58-67 tokens. Random weights: timings do not depend on them. The profiler's self time of
every operator of forward + backward is put in one bucket:

  MLP GEMMs (gate/up/down), attention-projection GEMMs (q/k/v/o), LoRA GEMMs (rank-8 A and B), LM head GEMM, attention
  core (QK^T, softmax, x V), casts (copy_ / to: autocast's and the residual stream's), other elementwise (RMSNorm,
  rotary, SiLU, residual adds, LoRA scaling, gradient accumulation, ...)

and the optimizer step is timed apart. Shares are ratios measured in one run, so they hold on a loaded machine; the
GEMM buckets' own rate (model FLOPs of those products / their time) against the reference says whether the products
themselves or everything around them stand between the step and the machine's limit.

    python benchmarks/profile_stage3_step.py              # torch's threads
    python benchmarks/profile_stage3_step.py --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_humocon_lm import build_config  # noqa: E402
from bench_stage3_step import build_lora_model, make_batches  # noqa: E402

from humocon_hf.calibration import calibrate_machine, lora_step_flops  # noqa: E402

BUCKETS = ("MLP GEMMs", "attention-projection GEMMs", "LoRA GEMMs", "LM head GEMM", "attention core", "casts",
           "other elementwise")


def bucket(name: str, shapes: list, hidden: int, intermediate: int, vocab: int, rank: int) -> str:
    """The bucket of one profiled operator from its name and input shapes."""
    if name in ("aten::mm", "aten::addmm"):
        dims = {d for shape in shapes if shape for d in shape}
        if vocab in dims:
            return "LM head GEMM"
        if intermediate in dims:
            return "MLP GEMMs"
        if rank in dims:
            return "LoRA GEMMs"
        return "attention-projection GEMMs"
    if name in ("aten::bmm", "aten::_softmax", "aten::_softmax_backward_data", "aten::baddbmm"):
        return "attention core"
    if name in ("aten::copy_", "aten::_to_copy", "aten::to"):
        return "casts"
    return "other elementwise"


def gemm_flops(shapes: list) -> float:
    """2 m k n of an mm's [m, k] x [k, n] inputs (addmm: the bias first)."""
    (m, k), (_, n) = [shape for shape in shapes if len(shape) == 2][-2:]
    return 2.0 * m * k * n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lengths", type=int, nargs="+", default=[58, 61, 64, 67])
    parser.add_argument("--rounds", type=int, default=2, help="profiled passes over the batches")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from torch.profiler import ProfilerActivity, profile

    from humocon_hf.training.frozen_weights import FrozenLinearWeightsInDtype
    from humocon_hf.training.qa_trainer_common import supervised_positions_loss

    config = build_config(False, smollm2_size=True)
    text = config.text_config
    model = build_lora_model(config)
    batches = make_batches(config, args.batch, args.lengths, 160, 3)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    trainable = sum(p.numel() for name, p in model.named_parameters() if p.requires_grad and "lora_" in name)
    rank = 8

    def forward_backward(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = supervised_positions_loss(model, batch)
        loss.backward()

    with FrozenLinearWeightsInDtype(model.get_base_model().language_model):
        for batch in batches:  # warm-up
            forward_backward(batch)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        step_s, opt_s = [], []
        for _ in range(args.rounds):
            for batch in batches:
                start = time.perf_counter()
                forward_backward(batch)
                mid = time.perf_counter()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step_s.append(time.perf_counter() - start)
                opt_s.append(time.perf_counter() - mid)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(args.rounds):
                for batch in batches:
                    forward_backward(batch)
                    optimizer.zero_grad(set_to_none=True)

    seconds, flops = defaultdict(float), defaultdict(float)
    for event in prof.key_averages(group_by_input_shape=True):
        if event.self_cpu_time_total <= 0:
            continue
        name = bucket(event.key, event.input_shapes, text.hidden_size, text.intermediate_size, text.vocab_size, rank)
        seconds[name] += event.self_cpu_time_total / 1e6
        if "GEMM" in name:
            flops[name] += gemm_flops(event.input_shapes) * event.count
    n_steps = args.rounds * len(batches)
    step = sum(step_s) / len(step_s)
    optimizer_s = sum(opt_s) / len(opt_s)
    profiled = sum(seconds.values()) / n_steps
    model_flops = sum(lora_step_flops(text, args.batch, n, 3 * args.batch, trainable) for n in args.lengths) / len(args.lengths)
    threads = torch.get_num_threads()
    reference = calibrate_machine(text.hidden_size, text.intermediate_size, tokens=64 * args.batch, threads=[threads])
    ref = reference["gflops"]["bfloat16"][str(threads)]
    print(f"stage-3 step on {threads} thread(s): {step * 1e3:.0f} ms ({model_flops / 1e9:.0f} GFLOP of model FLOPs: "
          f"{model_flops / step / 1e9:.0f} GFLOP/s = {100 * model_flops / step / (ref * 1e9):.0f}% of the bf16 "
          f"reference, {ref:.0f} GFLOP/s on {threads} thread(s))")
    print(f"optimizer step (AdamW over {sum(p.numel() for p in params) / 1e6:.2f} M trainable): {optimizer_s * 1e3:.1f} ms "
          f"= {100 * optimizer_s / step:.1f}% of the step")
    print(f"forward + backward, profiled: {profiled * 1e3:.0f} ms per step; share of it by part:")
    for name in BUCKETS:
        sec = seconds.get(name, 0.0) / n_steps
        rate = f"  {flops[name] / n_steps / sec / 1e9:6.0f} GFLOP/s = {100 * flops[name] / n_steps / sec / (ref * 1e9):3.0f}% of the reference" if flops.get(name) and sec else ""
        print(f"  {name:28s} {sec * 1e3:7.1f} ms  {100 * sec / profiled:5.1f}%{rate}")


if __name__ == "__main__":
    main()
