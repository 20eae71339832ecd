"""Tiny random HuMoCon parts shared by the question-answering model tests (fast on two CPU cores)."""

import math

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from humocon_hf.modeling.configuration_humocon import HuMoConConfig
from humocon_hf.modeling.configuration_humocon_encoders import (
    HuMoConConceptDiscoveryConfig,
)
from humocon_hf.modeling.modeling_humocon_encoders import (
    HuMoConMotionEncoder,
    HuMoConVideoEncoder,
)

VOCAB = 128
MOTION_ID = 120
VIDEO_ID = 121
PAD_ID = 0
MOTION_FEATURES = 137
NUM_KEY_FRAMES = 2
IMAGE_SIZE = 32


def tiny_text_config(vocab_size: int = VOCAB) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=PAD_ID,
        bos_token_id=1,
        eos_token_id=2,
    )


def tiny_encoder_configs():
    """The encoders' own small preset (2-layer 32x32 SigLIP, hidden 64, codebook 64)."""
    small = HuMoConConceptDiscoveryConfig.small()
    assert small.motion_config.feature_size == MOTION_FEATURES
    assert small.video_config.vision_config.image_size == IMAGE_SIZE
    return small.motion_config, small.video_config


def tiny_config(**overrides) -> HuMoConConfig:
    motion, video = tiny_encoder_configs()
    kwargs = {
        "text_config": tiny_text_config(),
        "motion_config": motion,
        "video_config": video,
        "motion_token_id": MOTION_ID,
        "video_token_id": VIDEO_ID,
    }
    kwargs.update(overrides)
    return HuMoConConfig(**kwargs)


def tiny_llm(vocab_size: int = VOCAB) -> LlamaForCausalLM:
    return LlamaForCausalLM(tiny_text_config(vocab_size)).eval()


def tiny_encoders():
    motion, video = tiny_encoder_configs()
    return HuMoConMotionEncoder(motion).eval(), HuMoConVideoEncoder(video).eval()


def make_sample(
    config, modalities=("motion",), seed=0, batch=1, motion_frames=10, text_len=5
):
    """Model inputs with placeholders expanded exactly as the processor does: `ceil(frames / stride)` motion
    tokens per clip and `key_frames * tokens_per_frame` video tokens per video, then a short random question."""
    gen = torch.Generator().manual_seed(seed)
    rows, data = [], {}
    n_motion = math.ceil(motion_frames / config.motion_token_stride)
    n_video = NUM_KEY_FRAMES * config.video_tokens_per_frame
    for _ in range(batch):
        row = [1]
        if "motion" in modalities:
            row += [config.motion_token_id] * n_motion
        if "video" in modalities:
            row += [config.video_token_id] * n_video
        row += torch.randint(3, 80, (text_len,), generator=gen).tolist()
        rows.append(row)
    data["input_ids"] = torch.tensor(rows)
    data["attention_mask"] = torch.ones_like(data["input_ids"])
    if "motion" in modalities:
        data["motion_values"] = torch.randn(
            batch, motion_frames, MOTION_FEATURES, generator=gen
        )
        data["motion_attention_mask"] = torch.ones(
            batch, motion_frames, dtype=torch.long
        )
    if "video" in modalities:
        data["pixel_values_videos"] = torch.randn(
            batch, NUM_KEY_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE, generator=gen
        )
    return data
