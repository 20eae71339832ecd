"""The demo's stage-3 step on CPU, measured side by side: what the precision and `torch.compile` change.

A LoRA step (rank 8 on the attention projections, projectors training, loss on the answer positions only) of
HuMoConForCausalLM at the SmolLM2-135M shape on motion prompts of the demo's lengths (batches of 8, 58-67 tokens,
lengths varying from batch to batch as the collator makes them). Random weights: timings do not depend on them.

1. [precision] bf16 autocast (CPUs with native bf16: the demo's default) vs float32 (every other CPU, or
   `HUMOCON_CPU_BF16=0`): the ratio sizes `model.float32_llm_steps_scale`, the lighter schedule of the float32 path.
   Each arm's model FLOP/s as a fraction of the machine reference (`humocon_hf.calibration`, the GEMM rate at the
   LLM's shapes that the demo records in results.json): how far the step is from what the machine can do.
2. [compile] `torch.compile` of the LLM's decoder vs eager, in the precision of [precision]'s faster arm: the compile time
   (the first steps over every batch shape), the steady-state step ratio and the steps a run needs before the
   compiled model has paid for its compilation.
3. [batch] the bf16 step at `--batch` vs twice that: time per training sample, which sizes the recipe's stage-3
   batch (a larger batch is cheaper per sample where small matrix products leave the cores idle).
4. [frozen weights] the bf16 step with the LLM's frozen linear weights held in bf16 while training
   (`FrozenLinearWeightsInDtype`, what the stage-2/3 trainers do under bf16 autocast) vs cast by autocast at every
   forward. (Generation needs no such thing: a loaded model's weights require grad, and autocast caches the casts of
   those for the whole `generate` call; measured 0.99.)
5. [threads] the bf16 step on every thread of the machine vs on one, and two one-thread processes running side by
   side: how much the second core buys within one step against running two jobs (stage 3 and the text-only
   baseline) at once.

    python benchmarks/bench_stage3_step.py                 # all
    python benchmarks/bench_stage3_step.py --skip-compile  # no C++ compiler needed
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_humocon_lm import build_config, make_batch  # noqa: E402

from humocon_hf.calibration import calibrate_machine, fraction_of_reference, lora_step_flops  # noqa: E402
from humocon_hf.recipes import cpu_has_bf16  # noqa: E402


def make_batches(config, batch: int, lengths: list[int], motion_frames: int, answer_tokens: int, seed: int = 0):
    """One motion prompt batch per length in `lengths` (bench_humocon_lm's prompts), supervised on the last
    `answer_tokens` tokens as stage 3 is."""
    n_motion = math.ceil(motion_frames / config.motion_token_stride)
    out = []
    for i, length in enumerate(lengths):
        prompt, _ = make_batch(config, batch, length - n_motion, motion_frames, 0, torch.device("cpu"), torch.float32,
                               seed=seed + i)
        labels = torch.full_like(prompt["input_ids"], -100)
        labels[:, -answer_tokens:] = prompt["input_ids"][:, -answer_tokens:]
        out.append({**prompt, "labels": labels})
    return out


def build_lora_model(config):
    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
    from humocon_hf.training.instruction_tuning import apply_lora

    torch.manual_seed(0)
    model = HuMoConForCausalLM(config)
    model.language_model.set_attn_implementation("eager")  # the small recipe's kernel on CPU
    return apply_lora(model, r=8, lora_alpha=16, lora_dropout=0.0, train_projectors=True).train()


def step_fn(model, bf16: bool):
    """One optimizer step under bf16 autocast or in float32."""
    from humocon_hf.training.qa_trainer_common import supervised_positions_loss

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)

    def loss_fn(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return supervised_positions_loss(model, batch)

    def step(batch):
        loss = loss_fn(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def timed_alternately(arms: dict, batches: list, rounds: int) -> dict[str, float]:
    """Median seconds per step of each arm, the arms taking turns batch by batch (load drift hits all alike)."""
    times = {name: [] for name in arms}
    for _ in range(rounds):
        for batch in batches:
            for name, fn in arms.items():
                start = time.perf_counter()
                fn(batch)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def steps_timed(step, batches, rounds: int) -> float:
    """Median seconds per step after one warm-up pass."""
    for batch in batches:
        step(batch)
    return timed_alternately({"step": step}, batches, rounds)["step"]


def batch_sizes(config, args, bf16: bool) -> None:
    model = build_lora_model(config)
    step = step_fn(model, bf16)
    sizes = (args.batch, 2 * args.batch)
    per_size = {n: make_batches(config, n, args.lengths, args.motion_frames, answer_tokens=3) for n in sizes}
    for batches in per_size.values():  # warm-up
        step(batches[0])
    # Each size is an arm that steps on its own batch of the i-th length; the arms take turns as usual.
    arms = {n: (lambda i, n=n: step(per_size[n][i])) for n in sizes}
    per_step = timed_alternately(arms, list(range(len(args.lengths))), args.rounds)
    per_sample = {n: sec / n for n, sec in per_step.items()}
    print(f"\n[batch] stage-3 step, {'bf16 autocast' if bf16 else 'float32'}, {torch.get_num_threads()} threads")
    for n, sec in per_sample.items():
        print(f"  batch {n:3d}: {sec * n * 1e3:8.1f} ms/step  {sec * 1e3:6.1f} ms/sample")
    print(f"  per sample, batch {sizes[0]} / batch {sizes[1]}: {per_sample[sizes[0]] / per_sample[sizes[1]]:.2f}")


def frozen_weights(config, batches, args) -> None:
    from humocon_hf.training.frozen_weights import FrozenLinearWeightsInDtype

    cast_each_step = build_lora_model(config)
    held = build_lora_model(config)
    with FrozenLinearWeightsInDtype(held.get_base_model().language_model) as frozen:
        arms = {"cast by autocast": step_fn(cast_each_step, True), "held in bf16": step_fn(held, True)}
        for batch in batches:  # warm-up
            for fn in arms.values():
                fn(batch)
        train = timed_alternately(arms, batches, args.rounds)
        n = frozen.num_weights
    print(f"\n[frozen weights] stage-3 step, bf16 autocast, {n} frozen linear weights of the LLM")
    for name, sec in train.items():
        print(f"  {name:16s}: {sec * 1e3:8.1f} ms/step")
    print(f"  cast by autocast / held in bf16: {train['cast by autocast'] / train['held in bf16']:.2f}")


def threads(config, batches, args, bf16: bool) -> None:
    all_threads = torch.get_num_threads()
    if all_threads < 2:
        print("\n[threads] skipped: one thread")
        return
    step = step_fn(build_lora_model(config), bf16)
    torch.set_num_threads(1)
    one = steps_timed(step, batches, args.rounds)
    torch.set_num_threads(all_threads)
    every = steps_timed(step, batches, args.rounds)
    # Two processes of one thread each, started together, each timing its own steps.
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--batch", str(args.batch), "--rounds",
           str(args.rounds), "--motion-frames", str(args.motion_frames), "--lengths", *map(str, args.lengths)]
    cmd += ["--tiny"] if args.tiny else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    workers = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    side_by_side = [float(w.communicate()[0].split("seconds/step")[-1]) for w in workers]
    pair = statistics.mean(side_by_side)
    print(f"\n[threads] stage-3 step, batch {args.batch}, {'bf16 autocast' if bf16 else 'float32'}")
    print(f"  {all_threads} threads, alone      : {every * 1e3:8.1f} ms/step")
    print(f"  1 thread, alone        : {one * 1e3:8.1f} ms/step  ({one / every:.2f}x the {all_threads}-thread step)")
    print(f"  1 thread, two processes: {pair * 1e3:8.1f} ms/step each")
    print(f"  throughput, two 1-thread processes side by side / one {all_threads}-thread process: "
          f"{2 * every / pair:.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lengths", type=int, nargs="+", default=[58, 61, 64, 67], help="prompt lengths (tokens)")
    parser.add_argument("--motion-frames", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the batches")
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="the small 4-layer LLM shape (quick runs)")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-frozen", action="store_true")
    parser.add_argument("--skip-threads", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one arm of [threads]' side by side
    args = parser.parse_args(argv)

    config = build_config(paper_size=False, smollm2_size=not args.tiny)
    batches = make_batches(config, args.batch, args.lengths, args.motion_frames, answer_tokens=3)
    if args.worker:
        step = step_fn(build_lora_model(config), bf16=cpu_has_bf16())
        print(f"seconds/step {steps_timed(step, batches, args.rounds)}", flush=True)
        return
    native = cpu_has_bf16()
    print(f"threads={torch.get_num_threads()} native bf16={native} batch={args.batch} lengths={args.lengths}")

    model = build_lora_model(config)
    fp32, bf16 = step_fn(model, bf16=False), step_fn(model, bf16=True)
    for batch in batches:  # warm-up
        fp32(batch), bf16(batch)
    t = timed_alternately({"float32": fp32, "bf16 autocast": bf16}, batches, args.rounds)
    tokens = args.batch * statistics.mean(args.lengths)
    # The machine reference (what the demo records) measured right after, and the step's model FLOPs against it.
    reference = calibrate_machine(config.text_config.hidden_size, config.text_config.intermediate_size,
                                  tokens=64 * args.batch, threads=[torch.get_num_threads()])
    trainable = sum(p.numel() for name, p in model.named_parameters() if p.requires_grad and "lora_" in name)
    flops = statistics.mean(lora_step_flops(config.text_config, args.batch, n, 3 * args.batch, trainable)
                            for n in args.lengths)
    threads_now = str(torch.get_num_threads())
    print(f"\n[precision] stage-3 LoRA step: {flops / 1e9:.0f} GFLOP of model FLOPs per step (LLM forward + "
          f"activation gradients + LoRA); reference {reference['name']} on {threads_now} thread(s): "
          f"bf16 {reference['gflops']['bfloat16'][threads_now]:.0f}, float32 "
          f"{reference['gflops']['float32'][threads_now]:.0f} GFLOP/s")
    for name, sec in t.items():
        dtype = "float32" if name == "float32" else "bfloat16"
        fraction = fraction_of_reference(flops / sec, reference, torch.get_num_threads(), dtype)
        print(f"  {name:14s}: {sec * 1e3:8.1f} ms/step  {tokens / sec:8.0f} tokens/s  {flops / sec / 1e9:6.0f} GFLOP/s "
              f"= {100 * fraction:4.0f}% of the {dtype} reference")
    print(f"  float32 / bf16 autocast: {t['float32'] / t['bf16 autocast']:.2f}")
    if not args.skip_batch:
        batch_sizes(config, args, native)
    if not args.skip_frozen and native:
        frozen_weights(config, batches, args)
    if not args.skip_threads:
        threads(config, batches, args, native)
    if args.skip_compile:
        return
    use_bf16 = t["bf16 autocast"] < t["float32"]
    eager = step_fn(model, use_bf16)
    compiled_model = build_lora_model(config)
    compiled_model.load_state_dict(model.state_dict())
    # The LLM's decoder only: the demo's stage-3 steps read cached encoder features, the decoder is the step's cost.
    compiled_model.base_model.model.language_model.compile()
    compiled = step_fn(compiled_model, use_bf16)
    start = time.perf_counter()
    for batch in batches:  # compilation: once per new shape (then dynamic shapes)
        compiled(batch)
    compile_s = time.perf_counter() - start
    t = timed_alternately({"eager": eager, "compiled": compiled}, batches, args.rounds)
    gain = t["eager"] - t["compiled"]
    print(f"\n[compile] torch.compile (inductor), {'bf16 autocast' if use_bf16 else 'float32'}")
    print(f"  first pass over {len(batches)} shapes (compilation): {compile_s:.1f} s")
    for name, sec in t.items():
        print(f"  {name:8s}: {sec * 1e3:8.1f} ms/step")
    print(f"  eager / compiled: {t['eager'] / t['compiled']:.2f}")
    print("  steps to pay for the compilation: " + (f"{compile_s / gain:.0f}" if gain > 0 else "never (no gain)"))


if __name__ == "__main__":
    main()
