"""Cost of HuMoCon's full concept-discovery objective against reconstruction only, measured side by side.

For each model size, one training step (forward, backward, AdamW step) on a paired motion + video batch is timed
with (a) the full objective (masked reconstruction, discriminative BCE over all codes, velocity reconstruction with
the double backward, alignment) and (b) reconstruction only (what phase 1 and the "w/o informativeness" ablation
cost). The two variants alternate step by step in the same process, so machine load affects both alike. Prints the
median step times, their ratio and samples per second.

    python benchmarks/bench_concept_discovery.py                    # small + mid on CPU, 1 thread
    python benchmarks/bench_concept_discovery.py --device cuda --bf16 --presets small mid paper
"""

import argparse
import statistics
import time

import torch

from humocon_hf.modeling.configuration_humocon_encoders import (
    HuMoConConceptDiscoveryConfig,
)
from humocon_hf.modeling.modeling_humocon_concept_discovery import HuMoConForConceptDiscovery

PRESETS = {
    # name: (config factory, batch, motion frames, key frames)
    "small": (lambda: HuMoConConceptDiscoveryConfig.small(), 8, 64, 4),
    "mid": (
        lambda: HuMoConConceptDiscoveryConfig(
            motion_config={
                "hidden_size": 256,
                "num_attention_heads": 4,
                "intermediate_size": 1024,
                "hidden_dropout": 0.0,
            },
            video_config={
                "vision_config": {
                    "hidden_size": 128,
                    "intermediate_size": 512,
                    "num_hidden_layers": 4,
                    "num_attention_heads": 4,
                    "image_size": 64,
                    "patch_size": 16,
                    "vision_use_head": False,
                },
                "vision_model_name_or_path": None,
                "hidden_size": 256,
                "num_attention_heads": 4,
                "intermediate_size": 1024,
                "hidden_dropout": 0.0,
                "decoder_num_layers": 4,
                "decoder_num_attention_heads": 4,
            },
            velocity_hidden_size=256,
        ),
        8,
        64,
        8,
    ),
    # Paper sizes (SigLIP-base tower at 224, codebook 512, 12-layer video decoder): GPU only.
    "paper": (lambda: HuMoConConceptDiscoveryConfig(), 32, 196, 8),
}


def make_batch(config, batch, frames, key_frames, device):
    size = config.video_config.vision_config.image_size
    grid = config.video_config.patch_grid_size
    g = torch.Generator().manual_seed(0)
    return {
        "motion_values": torch.randn(
            batch, frames, config.motion_config.feature_size, generator=g
        ).to(device),
        "motion_attention_mask": torch.ones(batch, frames, dtype=torch.long).to(device),
        "pixel_values_videos": torch.randn(
            batch, key_frames, 3, size, size, generator=g
        ).to(device),
        "video_timestamps": (
            torch.arange(key_frames).float()[None].repeat(batch, 1)
            * (frames / 20 / key_frames)
        ).to(device),
        "video_flow": torch.randn(batch, key_frames - 1, 2, grid, grid, generator=g).to(
            device
        ),
    }


def set_full(model, full: bool):
    for name in ("use_discriminative", "use_velocity_reconstruction", "use_alignment"):
        setattr(model.config, name, full)


def bench(preset, device, bf16, steps, warmup):
    factory, batch_size, frames, key_frames = PRESETS[preset]
    config = factory()
    torch.manual_seed(0)
    model = HuMoConForConceptDiscovery(config).to(device).train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-5
    )
    batch = make_batch(config, batch_size, frames, key_frames, device)
    n_params = sum(p.numel() for p in model.parameters())

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(
            device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16
        ):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    times = {True: [], False: []}
    for i in range(warmup + steps):
        for full in (True, False):
            set_full(model, full)
            sync()
            start = time.perf_counter()
            step()
            sync()
            if i >= warmup:
                times[full].append(time.perf_counter() - start)
    full_t = statistics.median(times[True])
    rec_t = statistics.median(times[False])
    peak = ""
    if device.startswith("cuda"):
        peak = f"  peak mem {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    print(
        f"{preset:>6} ({n_params / 1e6:.1f}M params, batch {batch_size}, {frames} frames, {key_frames} key frames, "
        f"{device}{' bf16' if bf16 else ''}): full {full_t * 1e3:.1f} ms/step ({batch_size / full_t:.1f} samples/s), "
        f"reconstruction-only {rec_t * 1e3:.1f} ms/step ({batch_size / rec_t:.1f} samples/s), "
        f"full/rec ratio {full_t / rec_t:.2f}{peak}"
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--presets", nargs="+", default=["small", "mid"], choices=sorted(PRESETS)
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--bf16", action="store_true", help="autocast the forward to bfloat16"
    )
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op CPU threads (default 1: on a shared 2-core machine more threads spin-wait against other "
        "processes and a small-model step went from 20 ms to seconds)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    for preset in args.presets:
        bench(preset, args.device, args.bf16, args.steps, args.warmup)


if __name__ == "__main__":
    main()
