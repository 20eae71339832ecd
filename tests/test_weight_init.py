"""Weight initialisation through transformers' `_init_weights` walk (issue 29): the projectors get their documented
init when built and when a checkpoint lacks them, the SigLIP tower inside the video encoder gets SigLIP's own init,
and a VQ codebook loaded from a checkpoint survives a missing statistics buffer."""

import math

import torch
from humocon_tiny import make_sample, tiny_config, tiny_encoder_configs
from safetensors.torch import load_file, save_file

from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
from humocon_hf.modeling.modeling_humocon_encoders import HuMoConMotionEncoder, HuMoConVideoEncoder

torch.set_num_threads(1)


def _resave_without(model, folder, drop) -> None:
    """`save_pretrained`, then rewrite the safetensors file without the keys for which `drop(key)` is true."""
    model.save_pretrained(folder)
    path = folder / "model.safetensors"
    state = load_file(path)
    kept = {k: v for k, v in state.items() if not drop(k)}
    assert len(kept) < len(state), "nothing was dropped"
    save_file(kept, path, metadata={"format": "pt"})


def _assert_documented_projector_init(model, std):
    for projector in (model.model.motion_projector, model.model.video_projector):
        for linear in (projector.linear_1, projector.linear_2):
            weight = linear.weight.detach()
            assert torch.isfinite(weight).all()
            assert abs(weight.mean().item()) < 3 * std / math.sqrt(weight.numel())
            assert abs(weight.std().item() - std) < 0.1 * std, weight.std().item()
            assert torch.equal(linear.bias.detach(), torch.zeros_like(linear.bias))


def test_projectors_built_with_the_documented_init():
    torch.manual_seed(0)
    config = tiny_config()
    model = HuMoConForCausalLM(config)
    _assert_documented_projector_init(model, config.initializer_range)  # PyTorch's default had std ~0.07 here


def test_checkpoint_without_projectors_loads_initialised_projectors(tmp_path):
    torch.manual_seed(0)
    config = tiny_config(initializer_range=0.03)
    model = HuMoConForCausalLM(config).eval()
    _resave_without(model, tmp_path, lambda key: "projector" in key)
    loaded, info = HuMoConForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info["missing_keys"]) == sorted(
        f"model.{m}_projector.linear_{i}.{p}" for m in ("motion", "video") for i in (1, 2) for p in ("weight", "bias")
    )
    _assert_documented_projector_init(loaded, 0.03)  # was torch.empty: NaN / garbage
    sample = make_sample(config, ("motion", "video"))
    with torch.no_grad():
        logits = loaded.eval()(**sample).logits
    assert torch.isfinite(logits).all()
    # Everything that was in the file is as saved.
    saved = model.state_dict()
    for name, value in loaded.state_dict().items():
        if "projector" not in name:
            assert torch.equal(value, saved[name]), name


def test_video_tower_loaded_without_weights_gets_siglip_init(tmp_path):
    """SigLIP initialises its attention (xavier uniform) and MLP (biases normal(1e-6)) from their parameter-less
    parent blocks, which transformers skipped inside a custom-code model: the tower got lecun-normal weights and
    zero biases instead."""
    _, video_config = tiny_encoder_configs()
    torch.manual_seed(0)
    _resave_without(HuMoConVideoEncoder(video_config), tmp_path, lambda key: key.startswith("vision_tower."))
    loaded = HuMoConVideoEncoder.from_pretrained(tmp_path)
    for layer in loaded.vision_tower.encoder.layers:
        for linear in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.mlp.fc1, layer.mlp.fc2):
            weight = linear.weight.detach()
            bound = math.sqrt(6.0 / sum(weight.shape))  # xavier uniform's bound
            assert weight.abs().max() <= bound, "not xavier uniform"
        for bias in (layer.mlp.fc1.bias, layer.mlp.fc2.bias):
            assert 0 < bias.abs().max() < 1e-4, "SigLIP's MLP biases are normal(std=1e-6)"
    assert all(torch.isfinite(p).all() for p in loaded.parameters())


def test_codebook_kept_when_a_statistics_buffer_is_missing(tmp_path):
    """A checkpoint without one of the quantizer's buffers (an older layout) must not reset the loaded codebook."""
    motion_config, _ = tiny_encoder_configs()
    torch.manual_seed(0)
    encoder = HuMoConMotionEncoder(motion_config)
    with torch.no_grad():
        encoder.quantizer.embed.add_(1.0)  # differs from the fixed initial codebook
    _resave_without(encoder, tmp_path, lambda key: key == "quantizer.num_updates")
    loaded = HuMoConMotionEncoder.from_pretrained(tmp_path)
    assert torch.equal(loaded.quantizer.embed, encoder.quantizer.embed)
    assert int(loaded.quantizer.num_updates) == 0


def test_from_parts_projectors_get_the_documented_init():
    from humocon_tiny import tiny_encoders, tiny_llm

    torch.manual_seed(0)
    motion, video = tiny_encoders()
    model = HuMoConForCausalLM.from_parts(
        tiny_llm(), motion, video, {"motion_token_id": 120, "video_token_id": 121}
    )
    _assert_documented_projector_init(model, model.config.initializer_range)
