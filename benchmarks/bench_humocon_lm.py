"""Benchmark of the HuMoCon question-answering model, measured side by side in one run.

1. Multimodal training overhead: the time of one training step (forward + backward + SGD update of the LLM and
   the projectors; encoders frozen, as in the paper's stages) of HuMoConForCausalLM on prompts holding a motion
   and a video, over the same LLM alone on plain text of exactly the same token count.
2. Loss: logits at every position vs only at the supervised answer positions (the trainers' loss).
   Attention: the same step with the LLM's attention through PyTorch's SDPA vs the eager path, on padded prompts.
3. Generation: batched greedy generation with the KV cache over one-prompt-at-a-time generation without a
   cache (throughput ratio, tokens/s each), on the same multimodal prompts.

Random weights: timings do not depend on them. Examples:

    python benchmarks/bench_humocon_lm.py                       # small CPU shapes
    python benchmarks/bench_humocon_lm.py --smollm2-size --batch 8   # the demo's LLM shape and batch
    python benchmarks/bench_humocon_lm.py --smollm2-size --batch 8 --key-frames 0 --text-len 36 --motion-frames 160 \
        --autocast-bf16                          # motion-only prompts of 76 tokens under bf16 autocast, as in the demo
    python benchmarks/bench_humocon_lm.py --device cuda --bf16 --paper-size   # Llama-3.1-8B shape, SigLIP-base
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_pair(fn_a, fn_b, device, repeats: int, warmup: int) -> tuple[float, float]:
    """Median wall times (s) of `fn_a()` and `fn_b()`, measured alternately so that load
    drift on a shared machine hits both alike."""
    for _ in range(warmup):
        fn_a()
        fn_b()
    times = ([], [])
    for _ in range(repeats):
        for i, fn in enumerate((fn_a, fn_b)):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[i].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


# LLM shapes (LlamaConfig fields): the paper's Llama-3.1-8B, the demo's SmolLM2-135M, and a tiny one for quick runs.
LLM_SHAPES = {
    "paper": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                  rope_parameters={"rope_type": "default", "rope_theta": 500000.0}, tie_word_embeddings=False),
    "smollm2": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192, tie_word_embeddings=True),
    "small": dict(vocab_size=8192, hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=8,
                  num_key_value_heads=4, max_position_embeddings=4096, tie_word_embeddings=True),
}  # fmt: skip


def build_config(paper_size: bool, smollm2_size: bool = False):
    """Paper size: Llama-3.1-8B shape with paper-size encoders (4-layer motion transformer, SigLIP-base/16 at 224
    px); otherwise the SmolLM2-135M or the tiny LLM shape with the small encoders."""
    from transformers import LlamaConfig

    from humocon_hf.modeling.configuration_humocon import HuMoConConfig
    from humocon_hf.modeling.configuration_humocon_encoders import (
        HuMoConConceptDiscoveryConfig,
        HuMoConMotionEncoderConfig,
        HuMoConVideoEncoderConfig,
    )

    shape = "paper" if paper_size else "smollm2" if smollm2_size else "small"
    text = LlamaConfig(**LLM_SHAPES[shape], pad_token_id=0, bos_token_id=1, eos_token_id=2)
    if paper_size:
        motion, video = HuMoConMotionEncoderConfig(), HuMoConVideoEncoderConfig()
    else:
        small = HuMoConConceptDiscoveryConfig.small()
        motion, video = small.motion_config, small.video_config
    vocab = text.vocab_size
    return HuMoConConfig(
        text_config=text,
        motion_config=motion,
        video_config=video,
        motion_token_id=vocab - 2,
        video_token_id=vocab - 1,
    )


def make_batch(
    config,
    batch: int,
    text_len: int,
    motion_frames: int,
    key_frames: int,
    device,
    dtype,
    seed=0,
):
    """Multimodal prompts (placeholders expanded like the processor does) and a text-only batch of the same shape."""
    gen = torch.Generator().manual_seed(seed)
    n_motion = math.ceil(motion_frames / config.motion_token_stride)
    n_video = key_frames * config.video_tokens_per_frame
    text = torch.randint(
        3, config.text_config.vocab_size - 3, (batch, text_len), generator=gen
    )
    placeholders = torch.tensor(
        [config.motion_token_id] * n_motion + [config.video_token_id] * n_video
    )
    input_ids = torch.cat(
        [text[:, :1], placeholders.expand(batch, -1), text[:, 1:]], dim=1
    )
    size = config.video_config.vision_config.image_size
    multimodal = {
        "input_ids": input_ids.to(device),
        "attention_mask": torch.ones_like(input_ids).to(device),
        "motion_values": torch.randn(
            batch, motion_frames, config.motion_config.feature_size, generator=gen
        ).to(device, dtype),
        "motion_attention_mask": torch.ones(batch, motion_frames, dtype=torch.long).to(
            device
        ),
    }
    if key_frames:  # --key-frames 0: motion-only prompts, as in the demo
        multimodal["pixel_values_videos"] = torch.randn(batch, key_frames, 3, size, size, generator=gen).to(device, dtype)
        multimodal["video_timestamps"] = (torch.arange(key_frames, dtype=torch.float32) * 0.5).expand(batch, -1).to(device)
    plain_ids = torch.randint(
        3, config.text_config.vocab_size - 3, input_ids.shape, generator=gen
    ).to(device)
    plain = {"input_ids": plain_ids, "attention_mask": torch.ones_like(plain_ids)}
    return multimodal, plain


def _right_padding_mask(mask: torch.Tensor) -> torch.Tensor:
    """Pad rows on the right by 0, 1/8, 2/8... of their length (cycling), like a batch of prompts of mixed length."""
    mask = mask.clone()
    length = mask.shape[1]
    for row in range(mask.shape[0]):
        pad = (row % 4) * length // 8
        if pad:
            mask[row, length - pad :] = 0
    return mask


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--bf16", action="store_true", help="bfloat16 weights and activations"
    )
    parser.add_argument(
        "--paper-size",
        action="store_true",
        help="Llama-3.1-8B shape + paper-size encoders",
    )
    parser.add_argument(
        "--smollm2-size", action="store_true", help="SmolLM2-135M shape (the demo's LLM) + small encoders"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="training batch (default 4 CPU, 2 paper size)",
    )
    parser.add_argument(
        "--text-len", type=int, default=64, help="text tokens per prompt"
    )
    parser.add_argument(
        "--motion-frames",
        type=int,
        default=120,
        help="motion frames per prompt (6 s at 20 fps)",
    )
    parser.add_argument(
        "--key-frames", type=int, default=8, help="video key frames per prompt"
    )
    parser.add_argument(
        "--gen-batch", type=int, default=4, help="prompts generated for"
    )
    parser.add_argument(
        "--new-tokens", type=int, default=8, help="tokens generated per prompt"
    )
    parser.add_argument("--answer-tokens", type=int, default=3, help="supervised tokens per prompt in the loss test")
    parser.add_argument(
        "--autocast-bf16", action="store_true",
        help="[attention] under CPU/CUDA bf16 autocast with float32 weights, as the demo's bf16 recipe on CPU",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)

    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    batch = args.batch or (2 if args.paper_size else 4)
    torch.manual_seed(0)
    config = build_config(args.paper_size, args.smollm2_size)
    previous_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = HuMoConForCausalLM(config)
    finally:
        torch.set_default_dtype(previous_dtype)
    model.to(device=device, dtype=dtype)
    llm = model.language_model
    # the LLM's decoder and its LM head (counted once when tied to the input embeddings)
    llm_unique_params = {id(p): p for m in (model.language_model, model.lm_head) for p in m.parameters()}
    n_llm = sum(p.numel() for p in llm_unique_params.values()) / 1e6
    n_enc = (
        sum(
            p.numel()
            for m in (model.motion_encoder, model.video_encoder)
            for p in m.parameters()
        )
        / 1e6
    )
    n_proj = sum(p.numel() for p in model.projector_parameters()) / 1e6
    print(
        f"device={device} dtype={dtype} threads={torch.get_num_threads()} paper_size={args.paper_size}"
    )
    print(
        f"params: LLM {n_llm:.1f}M, encoders {n_enc:.1f}M (frozen), projectors {n_proj:.2f}M"
    )

    # ---------------------------------------------------------------- 1. training step overhead
    multimodal, plain = make_batch(
        config, batch, args.text_len, args.motion_frames, args.key_frames, device, dtype
    )
    tokens = multimodal["input_ids"].numel()
    llm.requires_grad_(True)
    model.lm_head.requires_grad_(True)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    llm_params = [p for p in llm_unique_params.values() if p.requires_grad]

    def sgd(params):
        with torch.no_grad():
            for p in params:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-1e-6)
                    p.grad = None

    def step_humocon():
        model(
            **multimodal, labels=multimodal["input_ids"], use_cache=False
        ).loss.backward()
        sgd(trainable)

    def step_llm():  # the same model without modality inputs: the LLM's decoder and head only
        model(**plain, labels=plain["input_ids"], use_cache=False).loss.backward()
        sgd(llm_params)

    t_llm, t_mm = _timed_pair(step_llm, step_humocon, device, args.repeats, args.warmup)
    n_mm = tokens - batch * args.text_len
    print(
        f"\n[train] batch {batch} x {tokens // batch} tokens ({n_mm // batch} motion+video placeholders per prompt)"
    )
    print(
        f"  LLM alone      : {t_llm * 1e3:9.1f} ms/step  {tokens / t_llm:10.0f} tokens/s"
    )
    print(
        f"  HuMoCon        : {t_mm * 1e3:9.1f} ms/step  {tokens / t_mm:10.0f} tokens/s"
    )
    print(
        f"  multimodal overhead ratio (HuMoCon / LLM alone, same token count): {t_mm / t_llm:.3f}"
    )

    model.zero_grad(set_to_none=True)
    llm.requires_grad_(False)
    model.lm_head.requires_grad_(False)
    if args.gradient_checkpointing:
        model.gradient_checkpointing_disable()

    # Loss on every position's logits vs on the supervised (answer) positions only, as the stage-2/3 trainers do,
    # with the LLM frozen and the projectors training (stage 2; LoRA adds little to a stage-3 step).
    from humocon_hf.training.qa_trainer_common import supervised_positions_loss

    answer_labels = torch.full_like(multimodal["input_ids"], -100)
    answer_labels[:, -args.answer_tokens :] = multimodal["input_ids"][:, -args.answer_tokens :]
    supervised = dict(multimodal, labels=answer_labels, use_cache=False)
    projectors = list(model.projector_parameters())

    def step_all_logits():
        model(**supervised).loss.backward()
        sgd(projectors)

    def step_answer_logits():
        supervised_positions_loss(model, supervised).backward()
        sgd(projectors)

    t_all, t_answer = _timed_pair(step_all_logits, step_answer_logits, device, args.repeats, args.warmup)
    print(f"\n[loss] {args.answer_tokens} supervised answer tokens per prompt")
    print(f"  logits at every position : {t_all * 1e3:9.1f} ms/step")
    print(f"  logits at answer only    : {t_answer * 1e3:9.1f} ms/step")
    print(f"  speed-up (every / answer only): {t_all / t_answer:.3f}")
    model.zero_grad(set_to_none=True)

    # The same stage-2/3 step with the LLM's attention through PyTorch's SDPA (transformers' default) vs the eager
    # matmul-softmax path (the small recipe's `model.attn_implementation`), on padded prompts as the collator makes.
    padded = dict(supervised, attention_mask=_right_padding_mask(supervised["attention_mask"]))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.autocast_bf16)

    def step_with(impl):
        def step():
            llm.set_attn_implementation(impl)
            with autocast:
                loss = supervised_positions_loss(model, padded)
            loss.backward()
            sgd(projectors)

        return step

    t_sdpa, t_eager = _timed_pair(step_with("sdpa"), step_with("eager"), device, args.repeats, args.warmup)
    llm.set_attn_implementation("sdpa")
    print(f"\n[attention] stage-2/3 step, padded prompts{', bf16 autocast' if args.autocast_bf16 else ''}")
    print(f"  sdpa  : {t_sdpa * 1e3:9.1f} ms/step")
    print(f"  eager : {t_eager * 1e3:9.1f} ms/step")
    print(f"  speed-up (sdpa / eager): {t_sdpa / t_eager:.3f}")
    model.zero_grad(set_to_none=True)

    # ---------------------------------------------------------------- 3. generation
    model.eval()
    gen_inputs, _ = make_batch(
        config,
        args.gen_batch,
        args.text_len,
        args.motion_frames,
        args.key_frames,
        device,
        dtype,
        seed=1,
    )
    gen_kwargs = {
        "max_new_tokens": args.new_tokens,
        "min_new_tokens": args.new_tokens,
        "do_sample": False,
        "pad_token_id": 0,
    }

    def batched():
        with torch.no_grad():
            return model.generate(**gen_inputs, use_cache=True, **gen_kwargs)

    def one_by_one():
        outs = []
        with torch.no_grad():
            for i in range(args.gen_batch):
                single = {k: v[i : i + 1] for k, v in gen_inputs.items()}
                outs.append(model.generate(**single, use_cache=False, **gen_kwargs))
        return outs

    repeats = max(1, args.repeats // 2)
    t_batched, t_single = _timed_pair(batched, one_by_one, device, repeats, 1)
    generated = args.gen_batch * args.new_tokens
    print(
        f"\n[generate] {args.gen_batch} prompts x {gen_inputs['input_ids'].shape[1]} tokens, "
        f"{args.new_tokens} new tokens each (greedy)"
    )
    print(
        f"  one-by-one, no cache : {t_single:8.3f} s  {generated / t_single:10.1f} new tokens/s"
    )
    print(
        f"  batched, KV cache    : {t_batched:8.3f} s  {generated / t_batched:10.1f} new tokens/s"
    )
    print(
        f"  throughput ratio (batched cached / one-by-one uncached): {t_single / t_batched:.2f}"
    )
    if device.type == "cuda":
        print(
            f"\npeak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB"
        )


if __name__ == "__main__":
    main()
