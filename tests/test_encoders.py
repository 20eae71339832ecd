"""Concept encoders, VQ codebook and the four concept-discovery objectives (tiny models, CPU)."""

import itertools
import math

import pytest
import torch
from conftest import run_without_the_package

from humocon_hf.modeling.configuration_humocon_encoders import (
    HuMoConConceptDiscoveryConfig,
    HuMoConMotionEncoderConfig,
    HuMoConVideoEncoderConfig,
)
from humocon_hf.modeling.modeling_humocon_concept_discovery import LOSS_COMPONENTS, HuMoConForConceptDiscovery
from humocon_hf.modeling.modeling_humocon_encoders import (
    HuMoConMotionEncoder,
    HuMoConVideoEncoder,
    concept_segments,
)
from humocon_hf.modeling.vector_quantizer import HuMoConVectorQuantizer

D = 137


pytestmark = pytest.mark.usefixtures("one_thread")


def small_config(**kwargs):
    return HuMoConConceptDiscoveryConfig.small(**kwargs)


def make_batch(batch=3, frames=37, key_frames=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    motion = torch.randn(batch, frames, D, generator=g)
    mask = torch.ones(batch, frames, dtype=torch.long)
    mask[1, frames - 9 :] = 0
    pixels = torch.randn(batch, key_frames, 3, size, size, generator=g)
    times = torch.arange(key_frames).float()[None].repeat(batch, 1) * 0.4 + 0.1
    flow = torch.randn(batch, key_frames - 1, 2, size // 8, size // 8, generator=g)
    return {
        "motion_values": motion,
        "motion_attention_mask": mask,
        "pixel_values_videos": pixels,
        "video_timestamps": times,
        "video_flow": flow,
    }


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HuMoConForConceptDiscovery(small_config())


# ------------------------------------------------------------------------------------------------ configs


def test_paper_defaults_and_small_preset():
    cfg = HuMoConConceptDiscoveryConfig()
    assert (
        cfg.motion_config.codebook_size == 512 and cfg.video_config.codebook_size == 512
    )
    assert (
        cfg.motion_config.num_hidden_layers == 4
        and cfg.motion_config.decoder_num_layers == 2
    )
    assert cfg.video_config.decoder_num_layers == 12
    assert (
        cfg.motion_config.motion_token_stride == 4
        and cfg.video_config.video_tokens_per_frame == 1
    )
    assert (
        cfg.video_config.vision_config.image_size == 224
        and cfg.video_config.vision_config.patch_size == 16
    )
    small = small_config(lambda_velocity=0.5, motion_config={"codebook_size": 32})
    assert small.lambda_velocity == 0.5 and small.motion_config.codebook_size == 32
    assert (
        small.motion_config.hidden_size == 64
        and small.video_config.vision_config.image_size == 32
    )


@pytest.mark.parametrize(
    "config_class, kwargs, match",
    [
        pytest.param(HuMoConMotionEncoderConfig, {"mask_ratio": 1.0}, "mask_ratio", id="mask_ratio_of_1"),
        pytest.param(HuMoConVideoEncoderConfig, {"video_tokens_per_frame": 3}, "perfect square",
                     id="tokens_per_frame_not_a_square"),
        pytest.param(HuMoConMotionEncoderConfig, {"hidden_size": 30, "num_attention_heads": 4}, "divisible",
                     id="hidden_size_not_divisible_by_heads"),
        pytest.param(HuMoConConceptDiscoveryConfig, {"dis_num_negatives": 0}, "dis_num_negatives",
                     id="no_negatives"),
    ],
)
def test_config_errors(config_class, kwargs, match):
    from huggingface_hub.errors import StrictDataclassError

    with pytest.raises(StrictDataclassError, match=match):
        config_class(**kwargs)


# ------------------------------------------------------------------------------------------------ encoders


def test_motion_encoder_token_counts_and_padding(model):
    batch = make_batch()
    out = model.motion_encoder(batch["motion_values"], batch["motion_attention_mask"])
    valid = batch["motion_attention_mask"].sum(-1)
    expected = [math.ceil(int(v) / 4) for v in valid]
    assert out.attention_mask.sum(-1).tolist() == expected
    assert out.last_hidden_state.shape == (3, math.ceil(37 / 4), 64)
    assert out.quantized.shape == out.pre_quantized.shape
    ids = out.concept_ids
    valid_tokens = out.attention_mask.bool()
    assert (ids[~valid_tokens] == -1).all() and (ids[valid_tokens] >= 0).all()
    # quantized holds codebook vectors at the valid tokens
    codebook = model.motion_encoder.quantizer.embed
    assert torch.allclose(
        out.quantized[valid_tokens], codebook[ids[valid_tokens]], atol=1e-5
    )


def test_motion_encoder_ignores_padded_frames(model):
    model.eval()
    batch = make_batch()
    a = model.motion_encoder(
        batch["motion_values"][1:2], batch["motion_attention_mask"][1:2]
    )
    garbage = batch["motion_values"][1:2].clone()
    garbage[:, -9:] = 100.0
    b = model.motion_encoder(garbage, batch["motion_attention_mask"][1:2])
    m = a.attention_mask.bool()
    assert torch.allclose(a.last_hidden_state[m], b.last_hidden_state[m], atol=1e-5)


def test_video_encoder_tokens_per_frame():
    cfg = small_config(video_config={"video_tokens_per_frame": 4})
    enc = HuMoConVideoEncoder(cfg.video_config)
    batch = make_batch(batch=2)
    out = enc(batch["pixel_values_videos"], batch["video_timestamps"])
    assert out.quantized.shape == (2, 4 * 4, 64)
    assert out.frame_features.shape == (2, 16, 32)
    assert out.concept_ids.shape == (2, 16)
    assert not any(p.requires_grad for p in enc.vision_tower.parameters())


def test_vision_tower_loaded_by_name_through_from_pretrained(tmp_path):
    from transformers import (
        SiglipConfig,
        SiglipModel,
        SiglipVisionConfig,
        SiglipVisionModel,
    )

    from humocon_hf.modeling.configuration_humocon_encoders import SMALL_VISION_CONFIG

    torch.manual_seed(3)
    tower = SiglipVisionModel(SiglipVisionConfig(**SMALL_VISION_CONFIG))
    tower.save_pretrained(tmp_path / "tower")
    cfg = small_config()
    enc = HuMoConVideoEncoder.from_vision_tower(
        str(tmp_path / "tower"), config=cfg.video_config
    )
    for (name, p), q in zip(
        tower.state_dict().items(), enc.vision_tower.state_dict().values()
    ):
        assert torch.equal(p, q), name
    assert enc.config.vision_model_name_or_path == str(tmp_path / "tower")
    # A full SiglipModel checkpoint (the layout of google/siglip-*) works through the same path.
    full = SiglipModel(
        SiglipConfig(
            vision_config=SMALL_VISION_CONFIG,
            text_config={
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "vocab_size": 99,
            },
        )
    )
    full.save_pretrained(tmp_path / "full")
    model = HuMoConForConceptDiscovery.from_vision_tower(
        str(tmp_path / "full"), config=small_config()
    )
    assert torch.equal(
        model.video_encoder.vision_tower.embeddings.patch_embedding.weight,
        full.vision_model.embeddings.patch_embedding.weight,
    )
    with pytest.raises(OSError):
        HuMoConVideoEncoder.from_vision_tower(
            str(tmp_path / "missing"), config=small_config().video_config
        )


# ------------------------------------------------------------------------------------------------ VQ


def test_vq_straight_through_commitment_and_ema():
    torch.manual_seed(0)
    vq = HuMoConVectorQuantizer(
        4, 2, decay=0.5, dead_code_threshold=0.0, commitment_weight=0.25
    )
    vq.train()
    centers = torch.tensor([[5.0, 0.0], [0.0, 5.0], [-5.0, 0.0], [0.0, -5.0]])
    x = (centers.repeat_interleave(8, 0) + 0.1 * torch.randn(32, 2))[None]
    vq(x)  # first training forward seeds the codebook from data
    assert vq.initialized.item() == 1
    seeded = vq.embed.clone()
    assert (
        torch.cdist(seeded, x[0]).min(-1).values.max() < 1e-5
    )  # every code is a data point
    for _ in range(30):
        vq(x)
    # every code converged onto one cluster mean that its points are assigned to
    dist = torch.cdist(vq.embed, centers)
    used = dist.argmin(-1)
    assert dist.min(-1).values.max() < 0.2 and len(set(used.tolist())) == 4
    xr = x.clone().requires_grad_(True)
    vq.eval()
    q, ids, commit = vq(xr)
    assert torch.allclose(q, vq.embed[ids])
    q.sum().backward()
    assert torch.allclose(xr.grad, torch.ones_like(xr))  # straight-through
    assert torch.isclose(commit, 0.25 * (x - vq.embed[ids]).pow(2).mean())


def test_vq_dead_codes_are_reseeded():
    torch.manual_seed(0)
    vq = HuMoConVectorQuantizer(8, 2, decay=0.5, dead_code_threshold=1.0)
    vq.train()
    x = torch.randn(1, 16, 2)
    vq(x)
    far = torch.full((1, 16, 2), 50.0) + torch.randn(1, 16, 2)
    for _ in range(6):
        vq(far)
    # codes unused by the far cluster died and were re-seeded onto it
    assert (vq.embed.norm(dim=-1) > 40).sum() >= 6


def test_vq_deferred_updates_equal_one_big_batch():
    torch.manual_seed(0)
    data = torch.randn(1, 40, 3)
    a = HuMoConVectorQuantizer(6, 3, decay=0.9, dead_code_threshold=0.5)
    b = HuMoConVectorQuantizer(6, 3, decay=0.9, dead_code_threshold=0.5)
    b.load_state_dict(a.state_dict())
    a.train()
    b.train()
    b.defer_updates = True
    for _ in range(3):
        a(data)
        b(data[:, :20])
        b(data[:, 20:])
        b.apply_update()
    assert torch.allclose(a.embed, b.embed, atol=1e-6) and torch.allclose(
        a.cluster_size, b.cluster_size
    )


# ------------------------------------------------------------------------------------------------ objectives


def test_forward_returns_every_loss(model):
    model.train()
    torch.manual_seed(0)
    out = model(**make_batch())
    for name in LOSS_COMPONENTS:
        assert getattr(out, name) is not None and torch.isfinite(getattr(out, name)), (
            name
        )
    expected = (
        out.loss_commit
        + out.loss_rec_motion
        + out.loss_rec_video
        + out.loss_dis
        + out.loss_velocity
        + out.loss_align
    )
    assert torch.isclose(out.loss, expected)
    assert out.motion_concept_ids.shape == (3, 10) and out.video_concept_ids.shape == (
        3,
        4,
    )


def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {
        n: (None if p.grad is None else p.grad.clone())
        for n, p in model.named_parameters()
    }


def test_velocity_loss_gradients_reach_hyper_network_and_encoder():
    torch.manual_seed(0)
    cfg = small_config(
        use_masked_reconstruction=False, use_discriminative=False, use_alignment=False
    )
    model = HuMoConForConceptDiscovery(cfg).eval()
    out = model(**make_batch())
    assert (
        out.loss_dis is None and out.loss_rec_motion is None and out.loss_align is None
    )
    grads = _grads(model, out.loss_velocity)

    def nonzero(prefix):
        sel = [g for n, g in grads.items() if n.startswith(prefix) and g is not None]
        return bool(sel) and any(g.abs().sum() > 0 for g in sel)

    for prefix in (
        "motion_hyper_network.generator",
        "motion_hyper_network.basis",
        "motion_hyper_network.state_embed",
        "motion_hyper_network.code_direction",
        "video_hyper_network.basis",
        "motion_velocity_decoder",
        "video_velocity_decoder",
        "motion_encoder.encoder",
        "motion_encoder.temporal_downsample",
        "video_encoder.encoder",
        "video_encoder.input_proj",
    ):
        assert nonzero(prefix), prefix
    # the frozen tower gets nothing, and the hyper-network's gradient exists only through ∂score/∂state:
    assert all(
        g is None
        for n, g in grads.items()
        if n.startswith("video_encoder.vision_tower")
    )
    # with the switch off the velocity decoder and hyper-network receive no gradient at all
    model.config.use_velocity_reconstruction = False
    model.config.use_discriminative = False
    model.config.use_masked_reconstruction = True
    grads_off = _grads(model, model(**make_batch()).loss)
    assert all(
        g is None
        for n, g in grads_off.items()
        if "velocity_decoder" in n or "hyper_network" in n
    )


def test_velocity_loss_works_under_no_grad(model):
    model.eval()
    with torch.no_grad():
        out = model(**make_batch())
    assert (
        out.loss_velocity is not None
        and torch.isfinite(out.loss_velocity)
        and not out.loss.requires_grad
    )


SWITCHES = {
    "use_masked_reconstruction": (("loss_rec_motion", 1.0), ("loss_rec_video", 1.0)),
    "use_discriminative": (("loss_dis", "lambda_dis"),),
    "use_velocity_reconstruction": (("loss_velocity", "lambda_velocity"),),
    "use_alignment": (("loss_align", "lambda_align"),),
}


@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_each_switch_removes_exactly_its_objective(switch):
    torch.manual_seed(0)
    cfg = small_config(lambda_dis=0.7, lambda_velocity=1.3, lambda_align=0.4)
    on = HuMoConForConceptDiscovery(cfg).eval()
    off = HuMoConForConceptDiscovery(
        small_config(
            lambda_dis=0.7, lambda_velocity=1.3, lambda_align=0.4, **{switch: False}
        )
    ).eval()
    off.load_state_dict(on.state_dict())
    batch = make_batch()
    torch.manual_seed(1)
    out_on = on(**batch)
    removed = sum(
        getattr(out_on, name) * (w if isinstance(w, float) else getattr(cfg, w))
        for name, w in SWITCHES[switch]
    )
    grads_on = _grads(on, out_on.loss - removed)
    torch.manual_seed(1)
    out_off = off(**batch)
    for name, _ in SWITCHES[switch]:
        assert getattr(out_off, name) is None
    for other in set(LOSS_COMPONENTS) - {n for n, _ in SWITCHES[switch]}:
        assert torch.allclose(
            getattr(out_on, other), getattr(out_off, other), atol=1e-6
        ), other
    grads_off = _grads(off, out_off.loss)
    changed = 0
    for name, g_off in grads_off.items():
        g_on = grads_on[name]
        if g_off is None or g_on is None:
            assert g_off is None or g_off.abs().max() == 0, name
            assert g_on is None or g_on.abs().max() < 1e-6, name
            continue
        assert torch.allclose(g_on, g_off, atol=1e-5, rtol=1e-4), name
        changed += 1
    assert changed > 0


def test_sampled_negatives_option():
    torch.manual_seed(0)
    hyper = HuMoConForConceptDiscovery(small_config()).motion_hyper_network
    codebook, states = torch.randn(64, 64), torch.randn(10, 64)
    every = hyper.logits(codebook, states)
    picked = torch.tensor([[3, 7, 63]] * 10)
    assert torch.allclose(
        hyper.logits(codebook, states, picked), every[:, [3, 7, 63]], atol=1e-5
    )
    model = HuMoConForConceptDiscovery(small_config(dis_num_negatives=5)).train()
    out = model(**make_batch())
    assert torch.isfinite(out.loss_dis)
    out.loss.backward()
    assert model.motion_hyper_network.basis.grad.abs().sum() > 0


def test_motion_only_video_only_and_explicit_pairs(model):
    model.train()
    batch = make_batch()
    motion = model(
        motion_values=batch["motion_values"],
        motion_attention_mask=batch["motion_attention_mask"],
    )
    assert (
        motion.loss_rec_video is None
        and motion.loss_align is None
        and motion.loss_rec_motion is not None
    )
    video = model(
        pixel_values_videos=batch["pixel_values_videos"],
        video_timestamps=batch["video_timestamps"],
    )
    # no flow and no motion: no velocity target, so no actionable term; the discriminative one stays
    assert (
        video.loss_rec_motion is None
        and video.loss_velocity is None
        and video.loss_dis is not None
    )
    pairs = model(
        **{
            **batch,
            "pixel_values_videos": batch["pixel_values_videos"][:2],
            "video_timestamps": batch["video_timestamps"][:2],
            "video_flow": batch["video_flow"][:2],
        },
        paired=torch.tensor([[2, 0], [0, 1]]),
    )
    assert pairs.loss_align is not None
    none = model(**batch, paired=torch.zeros(3, dtype=torch.bool))
    assert none.loss_align is None


def test_alignment_prefers_aligned_pairs():
    """InfoNCE is lower when the video tokens equal the aligned motion tokens than when shuffled."""
    torch.manual_seed(0)
    model = HuMoConForConceptDiscovery(small_config()).eval()
    model.video_alignment_projector.load_state_dict(
        model.motion_alignment_projector.state_dict()
    )

    class Out:
        pass

    motion = Out()
    motion.quantized = torch.randn(1, 8, 64)
    motion.attention_mask = torch.ones(1, 8, dtype=torch.bool)
    times = torch.tensor(
        [[0.0, 0.4, 0.8, 1.2]]
    )  # tokens 0, 2, 4, 6 at 20 fps / stride 4
    video = Out()
    video.quantized = motion.quantized[:, [0, 2, 4, 6]]
    pairs = torch.tensor([[0, 0]])
    aligned = model.alignment_loss(motion, video, times, pairs, 4)
    video.quantized = motion.quantized[:, [1, 3, 5, 7]]
    shifted = model.alignment_loss(motion, video, times, pairs, 4)
    assert aligned < shifted


# ------------------------------------------------------------------------------------------------ errors


def _with_value(tensor, index, value):
    out = tensor.clone()
    out[index] = value
    return out


# Each case maps `make_batch()` to the keyword arguments of a forward that must raise.
@pytest.mark.parametrize(
    "make_inputs, match",
    [
        pytest.param(lambda b: {"motion_values": _with_value(b["motion_values"], (0, 3, 5), float("nan"))},
                     "motion_values contains 1 NaN", id="nan_motion"),
        pytest.param(lambda b: {"motion_values": torch.zeros(0, 10, D)}, "empty", id="empty_motion"),
        pytest.param(lambda b: {}, "neither", id="no_inputs"),
        pytest.param(lambda b: {"motion_values": torch.zeros(1, 10, 12)}, "feature_size=137",
                     id="wrong_feature_size"),
        pytest.param(lambda b: {"motion_values": b["motion_values"],
                                "motion_attention_mask": b["motion_attention_mask"].flip(-1)},
                     "right-padded", id="left_padded_mask"),
        pytest.param(lambda b: {"motion_values": b["motion_values"],
                                "motion_attention_mask": torch.zeros(3, 37, dtype=torch.long)},
                     "no valid frame", id="mask_without_a_frame"),
        pytest.param(lambda b: {"motion_values": b["motion_values"],
                                "motion_attention_mask": torch.full((3, 37), -1, dtype=torch.long)},
                     r"0 \(padding\) and 1 \(real frame\) only, got \[-1\]", id="mask_of_minus_ones"),
        pytest.param(lambda b: {**b, "pixel_values_videos": b["pixel_values_videos"][:2], "video_timestamps": None,
                                "video_flow": None},
                     "differ in size", id="motion_and_video_batches_differ"),
        pytest.param(lambda b: {**b, "video_timestamps": b["video_timestamps"] + 5.0},
                     "mismatched pair lengths", id="timestamps_past_the_motion"),
        pytest.param(lambda b: {"pixel_values_videos": torch.zeros(1, 2, 3, 64, 64)},
                     r"\(batch, key_frames, 3, 32, 32\)", id="wrong_image_size"),
        pytest.param(lambda b: {"pixel_values_videos": b["pixel_values_videos"], "video_flow": b["video_flow"][:, :2]},
                     "video_flow must have shape", id="flow_of_wrong_shape"),
        pytest.param(lambda b: {"motion_values": b["motion_values"], "paired": torch.ones(3, dtype=torch.bool)},
                     "only one modality", id="pairs_with_one_modality"),
        pytest.param(lambda b: {**b, "paired": torch.tensor([[0, 5]])}, "out of range", id="pair_index_out_of_range"),
        pytest.param(lambda b: {**b, "video_timestamps": None}, "video_timestamps are needed", id="no_timestamps"),
        pytest.param(lambda b: {"motion_values": b["motion_values"], "video_flow": b["video_flow"]},
                     "without pixel_values_videos", id="flow_without_video"),
        pytest.param(lambda b: {"pixel_values_videos": _with_value(b["pixel_values_videos"], (0, 0, 0, 0, 0),
                                                                   float("inf"))},
                     "pixel_values_videos contains", id="inf_pixels"),
    ],
)
def test_bad_inputs_raise_clear_errors(model, make_inputs, match):
    inputs = make_inputs(make_batch())
    with pytest.raises(ValueError, match=match):
        model(**inputs)


# ------------------------------------------------------------------------------------------------ save / load


def test_save_load_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    model = HuMoConForConceptDiscovery(small_config()).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = make_batch()
    for _ in range(3):  # initialise and update the codebooks
        opt.zero_grad()
        model(**batch).loss.backward()
        opt.step()
    assert model.motion_encoder.quantizer.initialized.item() == 1
    model.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "model.safetensors").is_file()
    loaded = HuMoConForConceptDiscovery.from_pretrained(tmp_path / "ckpt")
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys()
    for key in sd:
        assert torch.equal(sd[key], sd2[key]), key
    model.eval()
    loaded.eval()
    torch.manual_seed(5)
    a = model(**batch)
    torch.manual_seed(5)
    b = loaded(**batch)
    assert torch.equal(a.loss, b.loss) and torch.equal(
        a.motion_concept_ids, b.motion_concept_ids
    )
    # the encoders alone (what the QA model loads) round-trip too
    model.motion_encoder.save_pretrained(tmp_path / "motion")
    model.video_encoder.save_pretrained(tmp_path / "video")
    m = HuMoConMotionEncoder.from_pretrained(tmp_path / "motion").eval()
    v = HuMoConVideoEncoder.from_pretrained(tmp_path / "video").eval()
    assert torch.equal(
        m(batch["motion_values"]).quantized,
        model.motion_encoder(batch["motion_values"]).quantized,
    )
    assert torch.equal(
        v(batch["pixel_values_videos"]).concept_ids,
        model.video_encoder(batch["pixel_values_videos"]).concept_ids,
    )


# ------------------------------------------------------------------------------------------------ concept API


def test_concept_segments():
    assert concept_segments([3, 3, 5, 5, 5, 3, -1, -1]) == [
        (0, 2, 3),
        (2, 5, 5),
        (5, 6, 3),
    ]
    assert concept_segments([]) == []


def test_get_concepts_and_timeline_plot(model, tmp_path):
    from humocon_hf.concepts import plot_concept_timeline

    batch = make_batch()
    concepts = model.get_concepts(
        motion_values=batch["motion_values"],
        motion_attention_mask=batch["motion_attention_mask"],
        pixel_values_videos=batch["pixel_values_videos"],
        video_timestamps=batch["video_timestamps"],
    )
    clip = concepts["motion"][1]
    assert clip["frame_concept_ids"].shape == (28,)
    segs = clip["segments"]
    assert segs[0][0] == 0 and segs[-1][1] == 28
    assert all(a[1] == b[0] for a, b in itertools.pairwise(segs))
    for start, end, cid in segs:
        assert (clip["frame_concept_ids"][start:end] == cid).all()
    assert len(concepts["video"][0]["frame_concept_ids"]) == 4
    path = plot_concept_timeline(
        {"motion": segs, "video": concepts["video"][1]["segments"]},
        tmp_path / "timeline.png",
        fps=20.0,
        title="t",
    )
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="empty"):
        plot_concept_timeline([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="start < end"):
        plot_concept_timeline([(4, 2, 1)], tmp_path / "x.png")


def test_velocity_loss_with_a_fully_frozen_video_encoder():
    """A frozen encoder's state does not require grad; the velocity objective still trains its heads."""
    torch.manual_seed(0)
    model = HuMoConForConceptDiscovery(
        small_config(use_masked_reconstruction=False, use_discriminative=False)
    ).train()
    model.video_encoder.requires_grad_(False)
    batch = make_batch()
    out = model(
        pixel_values_videos=batch["pixel_values_videos"],
        video_timestamps=batch["video_timestamps"],
        video_flow=batch["video_flow"],
    )
    grads = _grads(model, out.loss_velocity)
    assert grads["video_velocity_decoder.net.0.weight"].abs().sum() > 0
    assert grads["video_hyper_network.basis"].abs().sum() > 0
    assert all(g is None for n, g in grads.items() if n.startswith("video_encoder."))


def test_remote_code_export_loads_without_the_package(tmp_path):
    """The concept-discovery model saved as remote code loads with trust_remote_code where humocon_hf is blocked
    (its modeling file reaches the config and the quantiser only through same-folder imports)."""
    import os
    import subprocess
    import sys
    import textwrap

    save = textwrap.dedent(
        f"""
        import torch
        from humocon_hf.modeling.configuration_humocon_encoders import HuMoConConceptDiscoveryConfig
        from humocon_hf.modeling.modeling_humocon_concept_discovery import HuMoConForConceptDiscovery
        torch.manual_seed(0)
        HuMoConConceptDiscoveryConfig.register_for_auto_class()
        HuMoConForConceptDiscovery.register_for_auto_class("AutoModel")
        model = HuMoConForConceptDiscovery(HuMoConConceptDiscoveryConfig.small()).eval()
        model.save_pretrained({str(tmp_path / "export")!r})
        g = torch.Generator().manual_seed(1)
        x = torch.randn(2, 12, 137, generator=g)
        torch.save({{"x": x, "ids": model.motion_encoder(x).concept_ids}}, {str(tmp_path / "ref.pt")!r})
        """
    )
    load = (
        f"""
        import sys
        import torch
        from transformers import AutoModel
        model = AutoModel.from_pretrained({str(tmp_path / "export")!r}, trust_remote_code=True).eval()
        assert type(model).__name__ == "HuMoConForConceptDiscovery", type(model)
        assert "humocon_hf" not in sys.modules
        ref = torch.load({str(tmp_path / "ref.pt")!r})
        assert torch.equal(model.motion_encoder(ref["x"]).concept_ids, ref["ids"])
        """
    )
    saved = subprocess.run([sys.executable, "-c", save], cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS="1"),
                           capture_output=True, text=True, timeout=300, check=False)
    assert saved.returncode == 0, saved.stderr[-3000:]
    run_without_the_package(load, tmp_path)
    assert (tmp_path / "export" / "vector_quantizer.py").is_file()


def test_extract_concepts_from_real_cmu_motion_and_rendered_video(
    shared_data, tmp_path
):
    from humocon_hf.concepts import extract_concepts, plot_concept_timeline
    from humocon_hf.processing.motion_io import load_motion
    from humocon_hf.processing.rendering import render_motion

    torch.manual_seed(0)
    model = HuMoConForConceptDiscovery(small_config())
    clips = [
        load_motion(shared_data / "cmu_bvh" / f"{t}.bvh") for t in ("02_01", "09_01")
    ]
    video = render_motion(clips[0].joints, size=32, fps=clips[0].fps)
    concepts = extract_concepts(
        model, motions=clips, videos=[video], video_fps=clips[0].fps
    )
    lengths = [len(c.joints) for c in clips]
    assert [len(c["frame_concept_ids"]) for c in concepts["motion"]] == lengths
    assert [c["segments"][-1][1] for c in concepts["motion"]] == lengths
    video_concepts = concepts["video"][0]
    assert (
        len(video_concepts["frame_concept_ids"]) == 8
    )  # the processor's default key-frame count
    assert video_concepts["timestamps"][-1] <= lengths[0] / clips[0].fps
    path = plot_concept_timeline(
        {"motion": concepts["motion"][0]["segments"]},
        tmp_path / "cmu.png",
        fps=clips[0].fps,
    )
    assert path.is_file()
    with pytest.raises(ValueError, match="motions and/or videos"):
        extract_concepts(model)


def test_unfrozen_vision_tower_trains():
    torch.manual_seed(0)
    model = HuMoConForConceptDiscovery(
        small_config(video_config={"freeze_vision_tower": False})
    ).train()
    assert model.video_encoder.vision_tower.training
    batch = make_batch()
    out = model(
        pixel_values_videos=batch["pixel_values_videos"],
        video_timestamps=batch["video_timestamps"],
        video_flow=batch["video_flow"],
    )
    grads = _grads(model, out.loss)
    tower = [
        g
        for n, g in grads.items()
        if n.startswith("video_encoder.vision_tower.encoder")
    ]
    assert (
        tower
        and all(g is not None for g in tower)
        and any(g.abs().sum() > 0 for g in tower)
    )


def test_eval_losses_are_deterministic_and_training_stays_random():
    """Masks and sampled negatives come from a fixed seed in eval mode: two identical eval calls agree (before they
    differed by ~4e-4), and evaluation does not consume torch's global RNG; training still draws new masks."""
    torch.manual_seed(0)
    model = HuMoConForConceptDiscovery(small_config(dis_num_negatives=5))
    batch = make_batch()
    model.eval()
    with torch.no_grad():
        state = torch.get_rng_state()
        first = model(**batch)
        assert torch.equal(torch.get_rng_state(), state)
        second = model(**batch)
    for name in ("loss", "loss_rec_motion", "loss_rec_video", "loss_dis"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    model.train()
    model.set_codebook_update_mode(True)  # keep the codebooks fixed between the two training calls
    with torch.no_grad():
        a, b = model(**batch).loss_rec_motion, model(**batch).loss_rec_motion
    assert not torch.equal(a, b)


@pytest.mark.parametrize("part", ["motion_encoder", "video_encoder", None])
def test_input_embeddings_peft_hooks_and_sdpa(part):
    """`get_input_embeddings` (enable_input_require_grads, PEFT) and `set_attn_implementation("sdpa")` work on every
    encoder class; the SigLIP tower follows the requested kernel."""
    torch.manual_seed(0)
    full = HuMoConForConceptDiscovery(small_config())
    model = full if part is None else getattr(full, part)
    embeddings = model.get_input_embeddings()
    assert isinstance(embeddings, torch.nn.Module)
    model.enable_input_require_grads()
    model.set_attn_implementation("sdpa")
    tower = full.video_encoder.vision_tower
    if part != "motion_encoder":
        assert tower.config._attn_implementation == "sdpa"
    batch = make_batch()
    if part == "motion_encoder":
        model.requires_grad_(False)
        out = model(batch["motion_values"], batch["motion_attention_mask"])
        assert out.last_hidden_state.requires_grad  # the hook makes the input side require grads


# ------------------------------------------------------------------------------------------------ transformers conventions


def _encoder_and_inputs(kind, **encoder_overrides):
    cfg = small_config(**{f"{kind}_config": encoder_overrides})
    batch = make_batch()
    if kind == "motion":
        enc = HuMoConMotionEncoder(cfg.motion_config)
        return enc, (batch["motion_values"], batch["motion_attention_mask"])
    enc = HuMoConVideoEncoder(cfg.video_config)
    return enc, (batch["pixel_values_videos"], batch["video_timestamps"])


@pytest.mark.parametrize("kind", ["motion", "video"])
def test_encoder_hidden_states_and_attentions_leave_the_output_unchanged(kind):
    """`output_hidden_states` / `output_attentions` return the concept (temporal) transformer's per-layer states and
    per-head attention probabilities. Hidden states alone change `last_hidden_state` by not even one bit; attentions
    run the layers' explicit (eager) attention, as in transformers, whose probabilities are the tensor the output is
    computed from (a gradient reaches them) and whose output equals the fused one to float rounding."""
    torch.manual_seed(0)
    enc, inputs = _encoder_and_inputs(kind)
    enc.eval()
    cfg = enc.config
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            plain = enc(*inputs)
            states_only = enc(*inputs, output_hidden_states=True)
            full = enc(*inputs, output_hidden_states=True, output_attentions=True)
        assert plain.hidden_states is None and plain.attentions is None
        for name in ("last_hidden_state", "quantized", "concept_ids", "pre_quantized", "commitment_loss"):
            assert torch.equal(getattr(plain, name), getattr(states_only, name)), (grad, name)
            torch.testing.assert_close(getattr(full, name), getattr(plain, name), rtol=1e-5, atol=1e-5)
        batch, tokens = plain.last_hidden_state.shape[:2]
        assert len(full.hidden_states) == cfg.num_hidden_layers + 1
        assert all(h.shape == (batch, tokens, cfg.hidden_size) for h in full.hidden_states)
        assert len(full.attentions) == cfg.num_hidden_layers
        assert all(a.shape == (batch, cfg.num_attention_heads, tokens, tokens) for a in full.attentions)
        # hidden_states[-1] precedes the transformer's final LayerNorm
        assert torch.equal(enc.encoder.norm(full.hidden_states[-1]), full.last_hidden_state)
    # each layer maps hidden_states[i] to hidden_states[i + 1], and its attention probabilities are the module's own
    mask = full.attention_mask.bool()
    padding = None if kind == "video" else ~mask
    with torch.no_grad():
        for i, layer in enumerate(enc.encoder.layers.layers):
            h = full.hidden_states[i]
            assert torch.allclose(layer(h, src_key_padding_mask=padding), full.hidden_states[i + 1], atol=1e-6)
            x = layer.norm1(h)
            _, expected = layer.self_attn(
                x, x, x, key_padding_mask=padding, need_weights=True, average_attn_weights=False
            )
            attn = full.attentions[i]
            assert torch.allclose(attn, expected, atol=1e-6)
            assert torch.allclose(attn.sum(-1), torch.ones_like(attn.sum(-1)), atol=1e-5)
            assert (attn.masked_select(~mask[:, None, None, :].expand_as(attn)) == 0).all()
    # the returned probabilities are the ones the output was computed from
    with torch.enable_grad():
        out = enc(*inputs, output_attentions=True)
        for attention in out.attentions:
            attention.retain_grad()
        out.last_hidden_state.sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in out.attentions)
    # tuple outputs end with the two new fields; the config provides the defaults
    as_tuple = enc(*inputs, return_dict=False, output_hidden_states=True, output_attentions=True)
    assert as_tuple[-2] is not None and len(as_tuple[-2]) == cfg.num_hidden_layers + 1
    assert len(as_tuple[-1]) == cfg.num_hidden_layers
    enc.config.output_hidden_states = True
    try:
        from_config = enc(*inputs)
    finally:
        enc.config.output_hidden_states = False
    assert len(from_config.hidden_states) == cfg.num_hidden_layers + 1 and from_config.attentions is None
    enc.config._output_attentions = True  # (the public setter insists on eager attention for the SigLIP tower)
    try:
        from_config = enc(*inputs)
    finally:
        enc.config._output_attentions = False
    assert len(from_config.attentions) == cfg.num_hidden_layers and from_config.hidden_states is None


@pytest.mark.parametrize("kind", ["motion", "video"])
def test_encoder_output_flags_draw_no_random_numbers_in_training(kind):
    """With dropout in training mode, `output_hidden_states` leaves the RNG stream (hence the dropout masks and the
    output) untouched; `output_attentions` trains through the explicit attention (its own dropout draws)."""
    torch.manual_seed(0)
    enc, inputs = _encoder_and_inputs(kind, hidden_dropout=0.1)
    enc.train()
    enc.set_codebook_update_mode(True)  # keep the codebook fixed between the calls
    torch.manual_seed(7)
    plain = enc(*inputs)
    after_plain = torch.get_rng_state()
    torch.manual_seed(7)
    full = enc(*inputs, output_hidden_states=True)
    assert torch.equal(torch.get_rng_state(), after_plain)
    assert torch.equal(plain.last_hidden_state, full.last_hidden_state)
    assert torch.equal(enc.encoder.norm(full.hidden_states[-1]), full.last_hidden_state)
    torch.manual_seed(8)
    assert not torch.equal(enc(*inputs).last_hidden_state, plain.last_hidden_state)  # dropout is active
    with_attentions = enc(*inputs, output_attentions=True)
    assert torch.isfinite(with_attentions.last_hidden_state).all()
    assert len(with_attentions.attentions) == enc.config.num_hidden_layers


def _three_models_configs():
    cfg = small_config()
    return {
        HuMoConMotionEncoder: cfg.motion_config,
        HuMoConVideoEncoder: cfg.video_config,
        HuMoConForConceptDiscovery: cfg,
    }


@pytest.mark.parametrize("model_class", [HuMoConMotionEncoder, HuMoConVideoEncoder, HuMoConForConceptDiscovery])
def test_init_weights_can_init_buffers_on_the_meta_device(model_class):
    """transformers' `test_init_weights_can_init_buffers`: every buffer (codebook, VQ statistics, position ids) is
    the same after `__init__` (with and without weight init) as after building on the meta device, `to_empty()` and
    `init_weights()`. Before, the codebook was torch.randn in `__init__` and normal_ again in `reset_parameters`."""
    import copy

    from transformers.initialization import no_init_weights

    config = _three_models_configs()[model_class]
    torch.manual_seed(0)
    built = model_class(copy.deepcopy(config))
    torch.manual_seed(1)
    with no_init_weights():
        init_only = model_class(copy.deepcopy(config))
    with torch.device("meta"):
        from_meta = model_class(copy.deepcopy(config))
    from_meta.to_empty(device="cpu")
    torch.manual_seed(2)
    from_meta.init_weights()
    reference = dict(from_meta.named_buffers())
    assert any(name.endswith("quantizer.embed") for name in reference)
    for other in (built, init_only):
        buffers = dict(other.named_buffers())
        assert sorted(buffers) == sorted(reference)
        for name, value in buffers.items():
            assert torch.equal(value, reference[name]), name
    embed = reference[next(n for n in reference if n.endswith("quantizer.embed"))]
    assert embed.std() > 0.5 and len(embed.unique(dim=0)) == embed.shape[0]  # a usable, non-degenerate codebook


def test_vq_init_is_deterministic_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    vq = HuMoConVectorQuantizer(8, 4)
    assert torch.equal(torch.get_rng_state(), state)
    initial = vq.embed.clone()
    vq.train()
    vq(torch.randn(1, 16, 4) + 3.0)  # data-dependent init overwrites the codebook
    assert vq.initialized.item() == 1 and not torch.equal(vq.embed, initial)
    state = torch.get_rng_state()
    vq.reset_parameters()
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(vq.embed, initial) and vq.initialized.item() == 0 and vq.num_updates.item() == 0
    assert (vq.cluster_size == 0).all() and (vq.embed_sum == 0).all()


def test_token_masks_are_long_zero_one(model):
    """`HuMoConEncoderOutput.attention_mask` and `ConceptDiscoveryOutput.motion_token_mask` are LongTensors of 0/1
    like transformers' attention masks (they were bool), with the same valid tokens as before."""
    model.eval()
    batch = make_batch()
    motion = model.motion_encoder(batch["motion_values"], batch["motion_attention_mask"])
    assert motion.attention_mask.dtype == torch.long
    valid = torch.tensor([math.ceil(int(v) / 4) for v in batch["motion_attention_mask"].sum(-1)])
    expected = torch.arange(motion.attention_mask.shape[1])[None] < valid[:, None]
    assert torch.equal(motion.attention_mask, expected.long())
    video = model.video_encoder(batch["pixel_values_videos"], batch["video_timestamps"])
    assert video.attention_mask.dtype == torch.long
    assert torch.equal(video.attention_mask, torch.ones(3, 4, dtype=torch.long))
    out = model(**batch)
    assert out.motion_token_mask.dtype == torch.long
    assert torch.equal(out.motion_token_mask, expected.long())
    # everything that indexes with the mask still works: concepts of padded tokens are -1, of valid ones >= 0
    assert (motion.concept_ids[~expected] == -1).all() and (motion.concept_ids[expected] >= 0).all()
    assert [len(c["token_concept_ids"]) for c in model.motion_encoder.get_concepts(
        batch["motion_values"], batch["motion_attention_mask"]
    )] == valid.tolist()


def test_concept_discovery_returns_the_encoders_states_when_asked():
    """`HuMoConForConceptDiscovery(output_hidden_states=True, output_attentions=True)`: the motion encoder's per-layer
    states and attentions (the video encoder's beside them), as transformers' shared model tests ask of every model;
    the losses do not change with the hidden states, nor by more than float rounding with the attentions."""
    torch.manual_seed(0)
    cfg = small_config()
    model = HuMoConForConceptDiscovery(cfg).eval()
    batch = make_batch()
    plain = model(**batch)
    assert plain.hidden_states is None and plain.attentions is None and plain.video_hidden_states is None
    states = model(**batch, output_hidden_states=True)
    torch.testing.assert_close(states.loss, plain.loss, rtol=0, atol=0)
    layers = cfg.motion_config.num_hidden_layers
    assert len(states.hidden_states) == layers + 1 and states.attentions is None
    assert len(states.video_hidden_states) == cfg.video_config.num_hidden_layers + 1
    full = model(**batch, output_hidden_states=True, output_attentions=True)
    torch.testing.assert_close(full.loss, plain.loss, rtol=1e-4, atol=1e-5)
    motion_tokens = full.motion_token_mask.shape[1]
    assert full.attentions[0].shape == (batch["motion_values"].shape[0], cfg.motion_config.num_attention_heads,
                                        motion_tokens, motion_tokens)
    video_only = model(pixel_values_videos=batch["pixel_values_videos"], video_timestamps=batch["video_timestamps"],
                       output_hidden_states=True)
    assert video_only.hidden_states is video_only.video_hidden_states


def test_hidden_states_by_layer_index():
    """`output_hidden_states=[0, 2, -1]` keeps those positions of the full tuple and leaves None elsewhere
    (transformers' selective capture), in the encoders and through the concept-discovery model."""
    torch.manual_seed(0)
    cfg = small_config()
    model = HuMoConForConceptDiscovery(cfg).eval()
    batch = make_batch()
    full = model(**batch, output_hidden_states=True).hidden_states
    picked = model(**batch, output_hidden_states=[0, 2, -1]).hidden_states
    n = len(full)
    assert len(picked) == n
    for i in range(n):
        if i in (0, 2, n - 1):
            torch.testing.assert_close(picked[i], full[i], rtol=0, atol=0)
        else:
            assert picked[i] is None
    enc = model.motion_encoder
    assert enc(batch["motion_values"], output_hidden_states=[1]).hidden_states[0] is None


def test_the_velocity_objective_has_one_name_and_reads_the_old_one():
    """`use_velocity_reconstruction` / `lambda_velocity` / `loss_velocity` (the paper's actionable informativeness);
    configs saved as `use_actionable` / `lambda_act` load under the new names."""
    old = small_config().to_dict()
    old["use_actionable"] = False
    old["lambda_act"] = 0.3
    del old["use_velocity_reconstruction"], old["lambda_velocity"]
    config = HuMoConConceptDiscoveryConfig.from_dict(old)
    assert (config.use_velocity_reconstruction, config.lambda_velocity) == (False, 0.3)
    assert "use_actionable" not in config.to_dict() and "loss_velocity" in LOSS_COMPONENTS
