"""Beam search / num_return_sequences with several media items per row (issue 29): `generate` copies each row
`num_beams` times, and every copy must get its own row's clips / videos, in order ([r0c0, r0c1, r0c0, r0c1, ...]),
not the items interleaved one by one ([c0, c0, c1, c1, ...], which handed a copy another row's clips)."""

import math

import pytest
import torch
from humocon_tiny import IMAGE_SIZE, MOTION_FEATURES, NUM_KEY_FRAMES, PAD_ID, make_sample, tiny_config

from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    # Continuous features: at random init the quantised ones are nearly all the same code, which hides a clip mix-up.
    torch.manual_seed(0)
    return HuMoConForCausalLM(
        tiny_config(use_motion_quantized=False, use_video_quantized=False, initializer_range=0.2)
    ).eval()


def _rows_with_items(config, modality, items_per_row, seed, frames=(6, 9, 5, 10)):
    """One row per entry of `items_per_row` (same length, no padding), row r holding that many clips / videos of
    distinct content (motion clips of distinct lengths), then a short question."""
    gen = torch.Generator().manual_seed(seed)
    rows, values, masks = [], [], []
    total = sum(items_per_row)
    max_frames = max(frames[:total])
    item = 0
    for count in items_per_row:
        row = [1]
        for _ in range(count):
            if modality == "motion":
                n = frames[item]
                row += [config.motion_token_id] * math.ceil(n / config.motion_token_stride)
                clip = torch.zeros(max_frames, MOTION_FEATURES)
                clip[:n] = 3 * torch.randn(n, MOTION_FEATURES, generator=gen)
                values.append(clip)
                masks.append((torch.arange(max_frames) < n).long())
            else:
                row += [config.video_token_id] * (NUM_KEY_FRAMES * config.video_tokens_per_frame)
                values.append(torch.randn(NUM_KEY_FRAMES, 3, IMAGE_SIZE, IMAGE_SIZE, generator=gen))
            item += 1
        rows.append(row)
    width = max(len(r) for r in rows)
    rows = [r + torch.randint(3, 80, (width - len(r) + 3,), generator=gen).tolist() for r in rows]
    inputs = {"input_ids": torch.tensor(rows)}
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if modality == "motion":
        inputs["motion_values"] = torch.stack(values)
        inputs["motion_attention_mask"] = torch.stack(masks)
    else:
        inputs["pixel_values_videos"] = torch.stack(values)
    return inputs


def _row(inputs, modality, items_per_row, r):
    """Row `r` alone with its own items."""
    start = sum(items_per_row[:r])
    end = start + items_per_row[r]
    single = {k: inputs[k][r : r + 1] for k in ("input_ids", "attention_mask")}
    names = ("motion_values", "motion_attention_mask") if modality == "motion" else ("pixel_values_videos",)
    single.update({k: inputs[k][start:end] for k in names})
    return single


def _beam(model, inputs, **kwargs):
    return model.generate(
        **inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False, num_beams=2, pad_token_id=PAD_ID,
        return_dict_in_generate=True, output_scores=True, **kwargs,
    )


def _merged_embeddings(model, inputs, modality):
    """The prompt's embeddings with the media features written at the placeholders (what the model's forward
    builds): generating from them involves no media, so their beam search is the reference."""
    ids = inputs["input_ids"]
    with torch.no_grad():
        embeds = model.get_input_embeddings()(ids)
        if modality == "motion":
            features = model.get_motion_features(inputs["motion_values"], inputs["motion_attention_mask"])
            token_id = model.config.motion_token_id
        else:
            features = model.get_video_features(inputs["pixel_values_videos"])
            token_id = model.config.video_token_id
        embeds[ids == token_id] = features.pooler_output[features.attention_mask.bool()]
    return embeds


@pytest.mark.parametrize("modality", ["motion", "video"])
def test_beam_search_with_two_items_per_row_equals_search_on_merged_embeddings(model, modality):
    counts = [2, 2]
    inputs = _rows_with_items(model.config, modality, counts, seed=3)
    batched = _beam(model, inputs)
    reference = _beam(model, {"inputs_embeds": _merged_embeddings(model, inputs, modality),
                              "attention_mask": inputs["attention_mask"]})
    width = inputs["input_ids"].shape[1]
    assert batched.sequences[:, width:].tolist() == reference.sequences.tolist()
    torch.testing.assert_close(batched.sequences_scores, reference.sequences_scores, rtol=1e-4, atol=1e-5)
    # And each row on its own gives what it gives in the batch.
    for r in range(len(counts)):
        single = _beam(model, _row(inputs, modality, counts, r))
        assert batched.sequences[r].tolist() == single.sequences[0].tolist()


def test_return_sequences_with_uneven_clips_per_row(model):
    """Rows holding 1 and 3 clips, each returned twice (num_return_sequences=2 under beam search)."""
    counts = [1, 3]
    inputs = _rows_with_items(model.config, "motion", counts, seed=4)
    batched = _beam(model, inputs, num_return_sequences=2)
    reference = _beam(model, {"inputs_embeds": _merged_embeddings(model, inputs, "motion"),
                              "attention_mask": inputs["attention_mask"]}, num_return_sequences=2)
    width = inputs["input_ids"].shape[1]
    assert batched.sequences[:, width:].tolist() == reference.sequences.tolist()
    torch.testing.assert_close(batched.sequences_scores, reference.sequences_scores, rtol=1e-4, atol=1e-5)


def test_expansion_orders_items_by_row(model):
    counts = [2, 1]
    inputs = _rows_with_items(model.config, "motion", counts, seed=5)
    _, expanded = model._expand_inputs_for_generation(
        expand_size=2, input_ids=inputs["input_ids"], motion_values=inputs["motion_values"],
        motion_attention_mask=inputs["motion_attention_mask"],
    )
    values = inputs["motion_values"]
    expected = torch.stack([values[0], values[1], values[0], values[1], values[2], values[2]])
    assert torch.equal(expanded["motion_values"], expected)
    # From inputs_embeds alone (generate(inputs_embeds=...) passes an empty input_ids).
    embeds = model.get_input_embeddings()(inputs["input_ids"])
    _, from_embeds = model._expand_inputs_for_generation(
        expand_size=2, input_ids=torch.empty(2, 0, dtype=torch.long), inputs_embeds=embeds,
        motion_values=values, motion_attention_mask=inputs["motion_attention_mask"],
    )
    assert torch.equal(from_embeds["motion_values"], expected)


def test_items_not_matching_rows_raise(model):
    counts = [1, 3]
    inputs = _rows_with_items(model.config, "motion", counts, seed=6)
    order = [1, 0, 2, 3]  # row 0's 2 placeholders would meet a 3-token clip
    with pytest.raises(ValueError, match="placeholder"):
        model._expand_inputs_for_generation(
            expand_size=2, input_ids=inputs["input_ids"], motion_values=inputs["motion_values"][order],
            motion_attention_mask=inputs["motion_attention_mask"][order],
        )
    with pytest.raises(ValueError, match="placeholder"):  # a clip short
        model._expand_inputs_for_generation(
            expand_size=2, input_ids=inputs["input_ids"], motion_values=inputs["motion_values"][:3],
            motion_attention_mask=inputs["motion_attention_mask"][:3],
        )


def test_single_item_rows_unchanged(model):
    inputs = make_sample(model.config, ("motion", "video"), batch=2, seed=7)
    _, expanded = model._expand_inputs_for_generation(expand_size=3, input_ids=inputs["input_ids"], **{
        k: v for k, v in inputs.items() if k != "input_ids"})
    for name in ("motion_values", "motion_attention_mask", "pixel_values_videos"):
        assert torch.equal(expanded[name], inputs[name].repeat_interleave(3, dim=0))
