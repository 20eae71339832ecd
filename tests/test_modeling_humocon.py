"""HuMoConForCausalLM: placeholder merging, generation (cache, batching, modalities), save/load, from_parts."""

import math

import numpy as np
import pytest
import torch
from humocon_tiny import (
    MOTION_ID,
    PAD_ID,
    VIDEO_ID,
    VOCAB,
    make_sample,
    tiny_config,
    tiny_encoders,
    tiny_llm,
)

from humocon_hf.modeling.configuration_humocon import HuMoConConfig
from humocon_hf.modeling.modeling_humocon import (
    HuMoConCausalLMOutputWithPast,
    HuMoConForCausalLM,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HuMoConForCausalLM(tiny_config()).eval()


# ------------------------------------------------------------------------------------------------- config


def test_config_defaults_are_tiny_and_partial_dicts_stay_tiny():
    config = HuMoConConfig(
        motion_config=tiny_config().motion_config,
        video_config=tiny_config().video_config,
    )
    assert config.text_config.model_type == "llama"
    assert (
        config.text_config.hidden_size == 64
        and config.text_config.num_hidden_layers == 2
    )
    partial = HuMoConConfig(
        text_config={"vocab_size": 300},
        motion_config=config.motion_config,
        video_config=config.video_config,
    )
    assert (
        partial.text_config.vocab_size == 300 and partial.text_config.hidden_size == 64
    )
    assert partial.tie_word_embeddings is True


def test_config_rejects_inconsistent_settings():
    """The config is a `@strict` dataclass (as transformers' own): field types and the `validate_*` rules are checked
    at construction, naming the field."""
    from huggingface_hub.errors import StrictDataclassError

    base = tiny_config()
    with pytest.raises(StrictDataclassError, match="must differ"):
        HuMoConConfig(
            motion_config=base.motion_config,
            video_config=base.video_config,
            motion_token_id=5,
            video_token_id=5,
        )
    with pytest.raises(StrictDataclassError, match="motion_token_stride"):
        HuMoConConfig(
            motion_config=base.motion_config,
            video_config=base.video_config,
            motion_token_stride=base.motion_token_stride + 1,
        )
    for field, value, expected in (("motion_token_stride", "four", "'motion_token_stride' expected int, got str"),
                                   ("video_token_id", 2.5, "'video_token_id' with value 2.5 doesn't match"),
                                   ("use_motion_quantized", "yes", "'use_motion_quantized' expected bool, got str")):
        with pytest.raises(StrictDataclassError, match=expected):
            HuMoConConfig(motion_config=base.motion_config, video_config=base.video_config, **{field: value})


def test_config_round_trip(tmp_path):
    config = tiny_config()
    config.save_pretrained(tmp_path)
    loaded = HuMoConConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert "auto_map" not in (tmp_path / "config.json").read_text()


# ------------------------------------------------------------------------------------------------ forward


@pytest.mark.parametrize(
    "modalities", [("motion",), ("video",), ("motion", "video"), ()]
)
def test_forward_every_modality_combination(model, modalities):
    inputs = make_sample(model.config, modalities, seed=1)
    out = model(**inputs, labels=inputs["input_ids"])
    assert isinstance(out, HuMoConCausalLMOutputWithPast)
    assert out.logits.shape == (*inputs["input_ids"].shape, VOCAB)
    assert torch.isfinite(out.loss)
    n_motion = int((inputs["input_ids"] == MOTION_ID).sum())
    n_video = int((inputs["input_ids"] == VIDEO_ID).sum())
    if "motion" in modalities:
        assert out.motion_hidden_states.shape == (
            n_motion,
            model.config.text_config.hidden_size,
        )
        assert out.motion_concept_ids is not None
    else:
        assert out.motion_hidden_states is None
    if "video" in modalities:
        assert out.video_hidden_states.shape == (
            n_video,
            model.config.text_config.hidden_size,
        )
    else:
        assert out.video_hidden_states is None


def test_modality_features_change_the_logits(model):
    inputs = make_sample(model.config, ("motion",), seed=2)
    other = dict(inputs, motion_values=inputs["motion_values"] + 1.0)
    assert not torch.allclose(model(**inputs).logits, model(**other).logits)


def test_return_dict_false_gives_tuple(model):
    inputs = make_sample(model.config, ("motion",), seed=3)
    out = model(**inputs, return_dict=False)
    assert isinstance(out, tuple)
    torch.testing.assert_close(out[0], model(**inputs).logits)


def test_inputs_embeds_only_matches_input_ids(model):
    inputs = make_sample(model.config, ("motion", "video"), seed=4)
    by_ids = model(**inputs).logits
    embeds = model.get_input_embeddings()(inputs["input_ids"])
    by_embeds = model(
        inputs_embeds=embeds,
        attention_mask=inputs["attention_mask"],
        motion_values=inputs["motion_values"],
        motion_attention_mask=inputs["motion_attention_mask"],
        pixel_values_videos=inputs["pixel_values_videos"],
    ).logits
    torch.testing.assert_close(by_embeds, by_ids)


def test_placeholder_feature_count_mismatch_raises(model):
    inputs = make_sample(model.config, ("motion",), seed=5)
    ids = inputs["input_ids"].clone()
    first = int((ids[0] == MOTION_ID).nonzero()[0])
    ids[0, first] = 7  # one placeholder fewer than the encoder's tokens
    n_tokens = int((ids == MOTION_ID).sum())
    with pytest.raises(
        ValueError,
        match=rf"{n_tokens} <motion> tokens in input_ids but the motion encoder produced "
        rf"{n_tokens + 1} features",
    ):
        model(**dict(inputs, input_ids=ids))
    with pytest.raises(ValueError, match="video encoder produced"):
        vid = make_sample(model.config, ("video",), seed=5)
        ids = vid["input_ids"].clone()
        ids[0, int((ids[0] == VIDEO_ID).nonzero()[0])] = 7
        model(**dict(vid, input_ids=ids))
    # Same check when only inputs_embeds are given.
    embeds = model.get_input_embeddings()(inputs["input_ids"])
    embeds = torch.cat(
        [embeds[:, :1], embeds[:, 2:]], dim=1
    )  # drop the first placeholder
    with pytest.raises(
        ValueError,
        match="<motion> tokens in inputs_embeds but the motion encoder produced",
    ):
        model(
            inputs_embeds=embeds,
            motion_values=inputs["motion_values"],
            motion_attention_mask=inputs["motion_attention_mask"],
        )


def test_placeholders_without_modality_inputs_are_read_as_text(model, caplog):
    """As in LLaVA: without media a placeholder is an ordinary token (a warning says so), not an error."""
    inputs = make_sample(model.config, ("motion",), seed=6)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    with caplog.at_level("WARNING"):
        logits = model(input_ids=ids, attention_mask=mask).logits
    text_only = model.lm_head(model.language_model(input_ids=ids, attention_mask=mask).last_hidden_state)
    torch.testing.assert_close(logits, text_only, rtol=0, atol=0)


def _prefer_token(model, token_id: int):
    """A copy of `model` whose LM head always ranks `token_id` first (a +1e4 output bias on it)."""
    import copy

    biased = copy.deepcopy(model)
    head = biased.get_output_embeddings()
    head.bias = torch.nn.Parameter(torch.zeros(head.weight.shape[0]))
    with torch.no_grad():
        head.bias[token_id] = 1e4
    return biased


@pytest.mark.parametrize("use_cache", [True, False])
def test_generation_never_emits_a_placeholder(model, use_cache):
    """A model that would rank <motion> first still generates text: the placeholders are suppressed (before, a
    generated <motion> crashed the next step: 'N <motion> tokens but the encoder produced M features')."""
    biased = _prefer_token(model, MOTION_ID)
    inputs = make_sample(model.config, ("motion", "video"), seed=12)
    assert int(biased(**inputs).logits[0, -1].argmax()) == MOTION_ID
    out = _generate(biased, inputs, use_cache=use_cache)
    new = out[:, inputs["input_ids"].shape[1]:]
    assert not (new == MOTION_ID).any() and not (new == VIDEO_ID).any()
    assert set(biased.generation_config.suppress_tokens) >= {MOTION_ID, VIDEO_ID}


def test_placeholders_suppressed_after_loading_an_older_checkpoint(model, tmp_path):
    """A checkpoint whose generation_config.json predates the suppression gets it on loading."""
    model.save_pretrained(tmp_path)
    config_file = tmp_path / "generation_config.json"
    import json

    saved = json.loads(config_file.read_text())
    saved.pop("suppress_tokens", None)
    config_file.write_text(json.dumps(saved))
    loaded = HuMoConForCausalLM.from_pretrained(tmp_path)
    assert set(loaded.generation_config.suppress_tokens) >= {MOTION_ID, VIDEO_ID}


def test_from_pretrained_with_loading_info(model, tmp_path):
    model.save_pretrained(tmp_path)
    loaded, info = HuMoConForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert isinstance(loaded, HuMoConForCausalLM) and not info["missing_keys"] and not info["unexpected_keys"]
    assert not any(p.requires_grad for p in loaded.motion_encoder.parameters())  # frozen as without the flag


def test_generate_from_inputs_embeds_matches_input_ids(model):
    inputs = make_sample(model.config, (), seed=13)
    embeds = model.get_input_embeddings()(inputs["input_ids"])
    from_ids = _generate(model, inputs)
    from_embeds = model.generate(inputs_embeds=embeds, attention_mask=inputs["attention_mask"], max_new_tokens=6,
                                 min_new_tokens=6, do_sample=False, pad_token_id=PAD_ID)
    # With inputs_embeds, generate returns only the new tokens.
    torch.testing.assert_close(from_embeds, from_ids[:, inputs["input_ids"].shape[1]:], rtol=0, atol=0)


def test_modality_inputs_without_token_id_raise():
    config = tiny_config(motion_token_id=None)
    model = HuMoConForCausalLM(config).eval()
    inputs = make_sample(tiny_config(), ("motion",), seed=7)
    with pytest.raises(ValueError, match="motion_token_id is not set"):
        model(**inputs)


def test_bad_modality_shapes_raise(model):
    inputs = make_sample(model.config, ("motion",), seed=8)
    with pytest.raises(ValueError, match="motion_values must have shape"):
        model(**dict(inputs, motion_values=inputs["motion_values"][0]))
    vid = make_sample(model.config, ("video",), seed=8)
    with pytest.raises(ValueError, match="pixel_values_videos must have shape"):
        model(**dict(vid, pixel_values_videos=vid["pixel_values_videos"][0]))


def test_nan_modality_inputs_raise(model):
    inputs = make_sample(model.config, ("motion", "video"), seed=8)
    bad = inputs["motion_values"].clone()
    bad[0, 3, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(**dict(inputs, motion_values=bad))
    bad = inputs["pixel_values_videos"].clone()
    bad[0, 0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN"):
        model(**dict(inputs, pixel_values_videos=bad))


def test_loss_uses_num_items_in_batch(model):
    inputs = make_sample(model.config, ("motion",), seed=9, batch=2)
    labels = inputs["input_ids"].masked_fill(inputs["input_ids"] == MOTION_ID, -100)
    labels = labels.masked_fill(inputs["attention_mask"] == 0, -100)
    mean_loss = model(**inputs, labels=labels).loss
    n_items = int((labels[:, 1:] != -100).sum())
    summed = model(
        **inputs, labels=labels, num_items_in_batch=torch.tensor(n_items * 2)
    ).loss
    # Normalised by the given count (the whole accumulated batch), not by this micro-batch.
    torch.testing.assert_close(summed, mean_loss / 2)


# --------------------------------------------------------------------------------------------- generation


def _generate(model, inputs, **kwargs):
    return model.generate(
        **inputs,
        max_new_tokens=6,
        min_new_tokens=6,
        do_sample=False,
        pad_token_id=PAD_ID,
        **kwargs,
    )


@pytest.mark.parametrize(
    "modalities", [("motion",), ("video",), ("motion", "video"), ()]
)
def test_generation_with_and_without_cache_agree(model, modalities):
    inputs = make_sample(model.config, modalities, seed=10)
    cached = _generate(model, inputs, use_cache=True)
    uncached = _generate(model, inputs, use_cache=False)
    assert cached.shape[1] == inputs["input_ids"].shape[1] + 6
    torch.testing.assert_close(cached, uncached, rtol=0, atol=0)


def test_modality_inputs_dropped_after_prefill(model):
    inputs = make_sample(model.config, ("motion", "video"), seed=11)
    first = model.prepare_inputs_for_generation(
        **inputs, cache=None, is_first_iteration=True, use_cache=True
    )
    later = model.prepare_inputs_for_generation(
        **inputs, cache=None, is_first_iteration=False, use_cache=True
    )
    uncached = model.prepare_inputs_for_generation(
        **inputs, cache=None, is_first_iteration=False, use_cache=False
    )
    for name in ("motion_values", "motion_attention_mask", "pixel_values_videos"):
        assert name in first and name not in later and name in uncached


def test_batched_left_padded_generation_equals_one_by_one(model):
    modal_sets = [("motion",), ("video",), ("motion", "video"), ()]
    samples = [
        make_sample(model.config, mods, seed=20 + i, motion_frames=9 + 3 * i)
        for i, mods in enumerate(modal_sets)
    ]
    batch = _left_pad(samples)
    batched = _generate(model, batch)
    width = batch["input_ids"].shape[1]
    for i, sample in enumerate(samples):
        single = _generate(model, sample)
        assert (
            batched[i, width:].tolist()
            == single[0, sample["input_ids"].shape[1] :].tolist()
        )


def _left_pad(samples):
    """Collate single samples (batch 1) with left padding, concatenating their motions / videos in order."""
    width = max(s["input_ids"].shape[1] for s in samples)
    ids, mask = [], []
    for s in samples:
        pad = width - s["input_ids"].shape[1]
        ids.append(torch.cat([torch.full((1, pad), PAD_ID), s["input_ids"]], 1))
        mask.append(
            torch.cat([torch.zeros(1, pad, dtype=torch.long), s["attention_mask"]], 1)
        )
    batch = {"input_ids": torch.cat(ids), "attention_mask": torch.cat(mask)}
    motions = [s for s in samples if "motion_values" in s]
    if motions:
        frames = max(s["motion_values"].shape[1] for s in motions)
        batch["motion_values"] = torch.cat(
            [
                torch.nn.functional.pad(
                    s["motion_values"], (0, 0, 0, frames - s["motion_values"].shape[1])
                )
                for s in motions
            ]
        )
        batch["motion_attention_mask"] = torch.cat(
            [
                torch.nn.functional.pad(
                    s["motion_attention_mask"],
                    (0, frames - s["motion_values"].shape[1]),
                )
                for s in motions
            ]
        )
    videos = [s for s in samples if "pixel_values_videos" in s]
    if videos:
        batch["pixel_values_videos"] = torch.cat(
            [s["pixel_values_videos"] for s in videos]
        )
    return batch


# ------------------------------------------------------------------------------------------ save / load


def trainable(model):
    return sorted(n for n, p in model.named_parameters() if p.requires_grad)


def test_save_load_identical_logits_and_tied_embeddings(model, tmp_path):
    from safetensors import safe_open

    inputs = make_sample(model.config, ("motion", "video"), seed=30)
    before = model(**inputs).logits
    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "language_model.model.embed_tokens.weight" in keys
    assert "language_model.lm_head.weight" not in keys  # tied: stored once
    loaded = HuMoConForCausalLM.from_pretrained(tmp_path).eval()
    assert trainable(loaded) == trainable(model)  # encoders frozen again after loading
    assert loaded.lm_head.weight.data_ptr() == loaded.language_model.embed_tokens.weight.data_ptr()
    torch.testing.assert_close(loaded(**inputs).logits, before, rtol=0, atol=0)
    for name, buffer in model.named_buffers():
        torch.testing.assert_close(
            dict(loaded.named_buffers())[name], buffer, rtol=0, atol=0
        )


def test_frozen_encoders_stay_in_eval_mode():
    model = HuMoConForCausalLM(tiny_config())
    model.train()
    assert model.language_model.training and model.motion_projector.training
    assert not model.motion_encoder.training and not model.video_encoder.training
    assert not any(p.requires_grad for p in model.motion_encoder.parameters())
    assert not any(p.requires_grad for p in model.video_encoder.parameters())


def test_attention_dtype_and_checkpointing_flags():
    assert (
        HuMoConForCausalLM._supports_sdpa
        and HuMoConForCausalLM.supports_gradient_checkpointing
    )
    model = HuMoConForCausalLM(tiny_config())
    assert model.language_model.config._attn_implementation == "sdpa"
    inputs = make_sample(model.config, ("motion", "video"), seed=31)

    def projector_grads(m):
        m.zero_grad()
        m(**inputs, labels=inputs["input_ids"]).loss.backward()
        return [p.grad.clone() for p in m.motion_projector.parameters()]

    model.train()
    reference = projector_grads(model)
    model.activation_checkpointing_enable()
    assert model.language_model.gradient_checkpointing
    for got, want in zip(projector_grads(model), reference):
        torch.testing.assert_close(got, want)

    bf16 = HuMoConForCausalLM(tiny_config()).to(torch.bfloat16).eval()
    out = bf16(**inputs)
    assert (
        out.logits.dtype == torch.bfloat16 and torch.isfinite(out.logits.float()).all()
    )


def test_eager_attention_matches_sdpa_on_padded_multimodal_prompts():
    """The small recipe trains with `attn_implementation="eager"` (faster on CPU): same loss and projector gradients
    as SDPA, with right padding in the batch."""
    from humocon_hf.training.instruction_tuning import supervised_positions_loss

    torch.manual_seed(0)
    model = HuMoConForCausalLM(tiny_config()).train()
    inputs = make_sample(model.config, ("motion", "video"), seed=32, batch=3, text_len=6)
    inputs["attention_mask"][1, -4:] = 0
    inputs["attention_mask"][2, -2:] = 0
    labels = inputs["input_ids"].clone()
    labels[:, :-3] = -100
    labels[inputs["attention_mask"] == 0] = -100
    inputs["labels"] = labels

    def loss_and_grads(impl):
        model.language_model.set_attn_implementation(impl)
        assert model.config.text_config._attn_implementation == impl
        model.zero_grad()
        loss = supervised_positions_loss(model, inputs)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.motion_projector.parameters()]

    sdpa_loss, sdpa_grads = loss_and_grads("sdpa")
    eager_loss, eager_grads = loss_and_grads("eager")
    torch.testing.assert_close(eager_loss, sdpa_loss, rtol=1e-5, atol=1e-6)
    for got, want in zip(eager_grads, sdpa_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_from_parts_resizes_embeddings_and_round_trips(tmp_path):
    torch.manual_seed(0)
    llm = tiny_llm(vocab_size=90)
    motion_encoder, video_encoder = tiny_encoders()
    old_embeddings = llm.get_input_embeddings().weight.detach().clone()
    model = HuMoConForCausalLM.from_parts(
        llm,
        motion_encoder,
        video_encoder,
        {"motion_token_id": 90, "video_token_id": 91},
    ).eval()
    assert model.config.text_config.vocab_size == 92
    assert model.get_input_embeddings().weight.shape[0] == 92
    assert (
        model.get_output_embeddings().weight.data_ptr()
        == model.get_input_embeddings().weight.data_ptr()
    )
    torch.testing.assert_close(model.get_input_embeddings().weight[:90], old_embeddings)
    assert model.language_model is llm.model and model.lm_head is llm.lm_head
    assert model.motion_encoder is motion_encoder
    assert not any(p.requires_grad for p in model.motion_encoder.parameters())
    assert all(p.requires_grad for p in model.motion_projector.parameters())
    assert all(torch.isfinite(p).all() for p in model.parameters())

    inputs = make_sample(model.config, ("motion", "video"), seed=40)
    before = model(**inputs).logits
    model.save_pretrained(tmp_path)
    loaded = HuMoConForCausalLM.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(**inputs).logits, before, rtol=0, atol=0)

    with pytest.raises(ValueError, match="motion_token_id and video_token_id"):
        HuMoConForCausalLM.from_parts(
            tiny_llm(), *tiny_encoders(), {"motion_token_id": None, "video_token_id": 3}
        )


def test_from_parts_rejects_a_processor_with_another_token_count():
    from types import SimpleNamespace

    processor = SimpleNamespace(
        motion_token_id=90, video_token_id=91, tokenizer=[0] * 92, motion_token_stride=2, video_tokens_per_frame=1
    )
    with pytest.raises(ValueError, match="processor.motion_token_stride=2 but the encoder uses 4"):
        HuMoConForCausalLM.from_parts(tiny_llm(vocab_size=90), *tiny_encoders(), processor)


def test_motion_token_count_follows_stride(model):
    stride = model.config.motion_token_stride
    for frames in (1, stride, stride + 1, 3 * stride - 1):
        inputs = make_sample(model.config, ("motion",), seed=50, motion_frames=frames)
        assert int((inputs["input_ids"] == MOTION_ID).sum()) == math.ceil(
            frames / stride
        )
        model(**inputs)


# ------------------------------------------------------------------------------------- real SmolLM2


@pytest.mark.slow
def test_smollm2_from_parts_end_to_end(tmp_path):
    """The embedded SmolLM2 (tied embeddings) + tiny encoders: text-only answers are the LLM's own, multimodal
    prompts generate, and save/load keeps the logits and the tying."""
    from humocon_tiny import IMAGE_SIZE, NUM_KEY_FRAMES
    from safetensors import safe_open

    from humocon_hf.llm import load_default_llm
    from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor
    from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor

    llm, tokenizer = load_default_llm()
    assert llm.config.tie_word_embeddings
    question = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(
        question, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        llm_answer = llm.generate(**prompt, max_new_tokens=8, do_sample=False)

    processor = MotionVideoProcessor(
        tokenizer,
        MotionFeatureExtractor(),
        HuMoConVideoProcessor(num_frames=NUM_KEY_FRAMES, size=IMAGE_SIZE),
    )
    model = HuMoConForCausalLM.from_parts(llm, *tiny_encoders(), processor).eval()
    assert model.config.text_config.vocab_size == len(tokenizer) == 49154
    assert (
        model.get_output_embeddings().weight.data_ptr()
        == model.get_input_embeddings().weight.data_ptr()
    )
    with torch.no_grad():
        answer = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert answer.tolist() == llm_answer.tolist()  # the wrapper is transparent for text

    rng = np.random.default_rng(0)
    motion = (
        rng.normal(scale=0.1, size=(24, 22, 3)) + np.array([0.0, 1.0, 0.0])
    ).astype(np.float32)
    conversation = [
        {
            "role": "user",
            "content": [
                {"type": "motion", "motion": motion},
                {"type": "text", "text": "What is the person doing?"},
            ],
        }
    ]
    inputs = processor.apply_chat_template(
        conversation, tokenize=True, add_generation_prompt=True, return_dict=True)
    with torch.no_grad():
        cached = model.generate(
            **inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False
        )
        uncached = model.generate(
            **inputs,
            max_new_tokens=5,
            min_new_tokens=5,
            do_sample=False,
            use_cache=False,
        )
        before = model(**inputs).logits
    assert cached.tolist() == uncached.tolist()

    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert "language_model.lm_head.weight" not in set(f.keys())
    loaded = HuMoConForCausalLM.from_pretrained(tmp_path).eval()
    assert (
        loaded.get_output_embeddings().weight.data_ptr()
        == loaded.get_input_embeddings().weight.data_ptr()
    )
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, before, rtol=0, atol=0)


def test_continuous_features_and_several_tokens_per_frame():
    from humocon_tiny import tiny_encoder_configs

    motion_cfg, video_cfg = tiny_encoder_configs()
    video_cfg = type(video_cfg)(**{**video_cfg.to_dict(), "video_tokens_per_frame": 4})
    config = tiny_config(
        video_config=video_cfg,
        video_tokens_per_frame=4,
        use_motion_quantized=False,
        use_video_quantized=False,
    )
    torch.manual_seed(0)
    model = HuMoConForCausalLM(config).eval()
    assert model.motion_projector.linear_1.in_features == motion_cfg.hidden_size
    inputs = make_sample(config, ("motion", "video"), seed=60)
    assert int((inputs["input_ids"] == VIDEO_ID).sum()) == 4 * 2
    out = model(**inputs)
    assert out.video_hidden_states.shape[0] == 8
    # Continuous features: moving the input a little moves the projected features (quantised ones may not).
    nudged = model(**dict(inputs, motion_values=inputs["motion_values"] + 1e-3))
    assert not torch.equal(nudged.motion_hidden_states, out.motion_hidden_states)


def test_motion_projector_reads_each_tokens_frames_when_asked():
    """`motion_projector_reads_poses`: the projector's input is the encoder's features plus the stride frames each
    token covers; a change confined to one token's frames changes that token's projection only (the quantised concept
    ids stay put), and frames masked out do not count."""
    config = tiny_config(motion_projector_reads_poses=True)
    stride, width = config.motion_token_stride, config.motion_config.feature_size
    torch.manual_seed(0)
    model = HuMoConForCausalLM(config).eval()
    assert model.motion_projector.linear_1.in_features == config.motion_config.codebook_dim + stride * width
    motion = torch.randn(1, 10, width)  # 3 tokens at stride 4, the last one half padding
    mask = torch.ones(1, 10, dtype=torch.long)
    with torch.no_grad():
        base = model.get_motion_features(motion, mask)
        nudged_input = motion.clone()
        # A frame of token 1; too small to move its concept (1e-3: the projector's normal(0.02) init passes ~7% of
        # a change through, where PyTorch's default init, which it had before, passed ~10x more).
        nudged_input[0, stride] += 1e-3
        nudged = model.get_motion_features(nudged_input, mask)
        assert torch.equal(nudged.concept_ids, base.concept_ids)
        changed = (nudged.pooler_output - base.pooler_output).abs().amax(-1)[0]
        # (the quantiser's straight-through estimate leaves float noise of ~1e-7 on the other tokens)
        assert changed[1] > 1e-5 and changed[0] < 1e-6 and changed[2] < 1e-6
        masked = mask.clone()
        masked[0, 9] = 0
        garbage = motion.clone()
        garbage[0, 9] = 1e3
        torch.testing.assert_close(model.get_motion_features(garbage, masked).pooler_output,
                                   model.get_motion_features(motion, masked).pooler_output)
    from huggingface_hub.errors import StrictDataclassError

    with pytest.raises(StrictDataclassError, match="motion_projector_reads_poses"):
        HuMoConConfig(motion_projector_reads_poses="yes")


def test_tensor_parallel_plan_shards_the_tied_head_with_the_embeddings():
    """The LM head is tied to the LLM's input embeddings, which the decoder's own TP plan shards: the head must be in
    the plan too (transformers' shared test of tied weights under tensor parallelism)."""
    model = HuMoConForCausalLM(tiny_config())
    plan = model.tp_plan
    assert "model.language_model.embed_tokens" in plan and plan.get("lm_head") == "colwise_gather_output"
