"""What the tests build, in one place: tiny random HuMoCon parts and checkpoints (fast on two CPU cores), a tiny LLM
folder with the real SmolLM2 tokenizer, and synthetic motions (SMPL-22 arrays, .npy files, BVH files)."""

import json
import math
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation
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


# ------------------------------------------------------------------------------------ tiny LLM and checkpoint


def make_tiny_llm_dir(root: Path, tokenizer_dir: Path) -> Path:
    """A 1-layer random Llama with the real SmolLM2 tokenizer (chat template included), saved as a folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    folder = root / "tiny-llm"
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_checkpoint(root: Path, tokenizer_dir: Path) -> Path:
    """A complete (random) HuMoCon checkpoint built the way the demo builds one, small enough for CPU tests."""
    from transformers import AutoModelForCausalLM

    from humocon_hf.hub import save_for_remote_code
    from humocon_hf.inference import CHAT_DEFAULTS
    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
    from humocon_hf.pipeline.builders import build_concept_model, build_processor
    from humocon_hf.recipes import DataArguments, ModelArguments

    llm_dir = make_tiny_llm_dir(root, tokenizer_dir)
    model_args = ModelArguments(llm_name_or_path=str(llm_dir), motion_token_stride=8, system_prompt="Answer briefly.")
    processor = build_processor(model_args, DataArguments(max_frames=64, cmu_bvh_dir=None))
    concept = build_concept_model(model_args)
    model = HuMoConForCausalLM.from_parts(
        AutoModelForCausalLM.from_pretrained(llm_dir), concept.motion_encoder, concept.video_encoder, processor
    )
    out = root / "ckpt"
    save_for_remote_code(model, out, processor=processor)
    (out / CHAT_DEFAULTS).write_text(json.dumps({"system_prompt": "Answer briefly.", "max_new_tokens": 4}))
    return out


# ------------------------------------------------------------------------------------------- synthetic motions


def walk_joints(num_frames: int, seed: int = 0) -> np.ndarray:
    """A crude but valid SMPL-22 clip: a T-ish pose translating forward along +Z."""
    from humocon_hf.processing.smpl22 import SMPL22_PARENTS

    rng = np.random.default_rng(seed)
    rest = np.zeros((22, 3), np.float32)
    offsets = rng.normal(0, 0.02, (22, 3)).astype(np.float32)
    offsets[:, 1] += np.where(np.arange(22) % 3 == 0, 0.12, -0.12)  # spine up, legs down
    offsets[[1, 4, 7, 10, 13, 16, 18, 20], 0] += 0.1  # left side at +X
    offsets[[2, 5, 8, 11, 14, 17, 19, 21], 0] -= 0.1
    for j in range(1, 22):
        rest[j] = rest[SMPL22_PARENTS[j]] + offsets[j]
    rest[:, 1] -= rest[:, 1].min()
    rest[:, 1] += 0.05
    t = np.arange(num_frames, dtype=np.float32)[:, None, None] / 20.0
    clip = np.repeat(rest[None], num_frames, axis=0)
    clip[..., 2] += 1.2 * t[..., 0]
    return clip


def write_motion_file(folder: Path, frames: int = 30) -> Path:
    from humocon_hf.processing.smpl22 import SMPL22_PARENTS

    rng = np.random.default_rng(0)
    rest = np.zeros((22, 3), np.float32)
    for j in range(1, 22):
        rest[j] = rest[SMPL22_PARENTS[j]] + np.array([0.0, 0.1 if j % 2 else -0.1, 0.02], np.float32)
    rest[:, 1] += 1.0
    joints = rest[None] + 0.01 * rng.standard_normal((frames, 22, 3)).astype(np.float32)
    path = folder / "clip.npy"
    np.save(path, joints)
    return path


# A Mixamo-named skeleton in cm, Y up, facing +Z, left = +X, arms out (T-pose rest).
BVH_SKELETON = [
    ("Hips", None, (0, 95, 0)),
    ("Spine", "Hips", (0, 10, 0)), ("Spine1", "Spine", (0, 12, 0)), ("Spine2", "Spine1", (0, 12, 0)),
    ("Neck", "Spine2", (0, 20, 0)), ("Head", "Neck", (0, 10, 2)),
    ("LeftShoulder", "Spine2", (4, 16, 0)), ("LeftArm", "LeftShoulder", (12, 0, 0)),
    ("LeftForeArm", "LeftArm", (28, 0, 0)), ("LeftHand", "LeftForeArm", (25, 0, 0)),
    ("RightShoulder", "Spine2", (-4, 16, 0)), ("RightArm", "RightShoulder", (-12, 0, 0)),
    ("RightForeArm", "RightArm", (-28, 0, 0)), ("RightHand", "RightForeArm", (-25, 0, 0)),
    ("LeftUpLeg", "Hips", (9, -6, 0)), ("LeftLeg", "LeftUpLeg", (0, -42, 0)),
    ("LeftFoot", "LeftLeg", (0, -40, 0)), ("LeftToeBase", "LeftFoot", (0, -6, 12)),
    ("RightUpLeg", "Hips", (-9, -6, 0)), ("RightLeg", "RightUpLeg", (0, -42, 0)),
    ("RightFoot", "RightLeg", (0, -40, 0)), ("RightToeBase", "RightFoot", (0, -6, 12)),
]
BVH_NAMES = [n for n, _, _ in BVH_SKELETON]


def walk_rotations(T, fps=60.0, tpose_frames=0):
    """Root XYZ positions (cm) and per-joint rotations (scipy Rotation per joint, T frames)."""
    t = np.arange(T) / fps
    root = np.stack([np.zeros(T), 95 + 2 * np.sin(4 * np.pi * t), 120.0 * t], axis=1)  # 1.2 m/s along +Z
    rots = {n: np.zeros((T, 3)) for n in BVH_NAMES}  # rotation vectors (radians)
    swing = 0.4 * np.sin(2 * np.pi * t)
    rots["LeftUpLeg"][:, 0] = swing
    rots["RightUpLeg"][:, 0] = -swing
    rots["LeftLeg"][:, 0] = 0.3 * (1 + np.sin(2 * np.pi * t))
    rots["LeftArm"][:, 2] = np.radians(-75)
    rots["RightArm"][:, 2] = np.radians(75)
    rots["Hips"][:, 1] = np.radians(10)  # a slight turn
    if tpose_frames:
        for n in BVH_NAMES:
            rots[n][:tpose_frames] = 0.0
        root[:tpose_frames] = [0.0, 95.0, -300.0]  # calibration pose far from the take
    return root, {n: Rotation.from_rotvec(v) for n, v in rots.items()}


def write_synthetic_bvh(path, root, rots, order="ZXY", skeleton=BVH_SKELETON, fps=60.0, transform=None, unit=1.0,
               names=None, all_positions=False, frame_time=None):
    """Write a BVH; ``transform`` (3x3) re-expresses the world (e.g. Z up, mirrored)."""
    M = np.eye(3) if transform is None else np.asarray(transform, dtype=float)
    names = names or {}
    children = {}
    for n, p, _ in skeleton:
        children.setdefault(p, []).append(n)
    offsets = {n: M @ np.asarray(o, dtype=float) * unit for n, _, o in skeleton}
    chan = " ".join(f"{a}rotation" for a in order)
    lines, cols = ["HIERARCHY"], []

    def emit(n, depth):
        pad = "  " * depth
        kw = "ROOT" if depth == 0 else "JOINT"
        lines.append(f"{pad}{kw} {names.get(n, n)}")
        lines.append(pad + "{")
        o = offsets[n]
        lines.append(f"{pad}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        if depth == 0 or all_positions:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition {chan}")
            cols.append((n, "pos"))
        else:
            lines.append(f"{pad}  CHANNELS 3 {chan}")
        cols.append((n, "rot"))
        for c in children.get(n, []):
            emit(c, depth + 1)
        if n not in children:
            lines.append(f"{pad}  End Site")
            lines.append(pad + "  {")
            lines.append(f"{pad}    OFFSET 0 0 {5 * unit:.6f}")
            lines.append(pad + "  }")
        lines.append(pad + "}")

    emit(skeleton[0][0], 0)
    T = root.shape[0]
    blocks = []
    for n, kind in cols:
        if kind == "pos":
            if n == skeleton[0][0]:
                blocks.append((root @ M.T) * unit - offsets[n])  # root: offset + channel
            else:
                blocks.append(np.repeat(offsets[n][None], T, axis=0))  # MotionBuilder style
        else:
            # Conjugate into the transformed frame: R' = M R M^-1 (for mirrors too).
            mats = M @ rots[n].as_matrix() @ np.linalg.inv(M)  # det(M R M^-1) = det(R) = 1
            blocks.append(Rotation.from_matrix(mats).as_euler(order, degrees=True))
    data = np.concatenate(blocks, axis=1)
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {frame_time if frame_time is not None else 1.0 / fps:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in data]
    Path(path).write_text("\n".join(lines) + "\n")
    return path
