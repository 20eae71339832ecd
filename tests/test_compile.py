"""`torch.compile(fullgraph=True)` of a decode step without media (issue 29): the step has no data-dependent Python
value (`int(mask.sum())` broke the graph even when no media was given), so `_can_compile_fullgraph` is True and
`generate` may compile its decode steps with a static cache."""

import pytest
import torch
from humocon_tiny import PAD_ID, make_sample, tiny_config
from transformers import StaticCache

from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HuMoConForCausalLM(tiny_config()).eval()


def _decode_inputs(model, prompt, max_cache_len=48):
    """A prefilled static cache (media in the prompt, eager) and the inputs of the next decode step, built the way
    `generate` builds them."""
    cache = StaticCache(config=model.config, max_cache_len=max_cache_len)
    with torch.no_grad():
        prefill = model(**prompt, cache=cache, use_cache=True)
    next_token = prefill.logits[:, -1:].argmax(-1)
    ids = torch.cat([prompt["input_ids"], next_token], dim=1)
    mask = torch.cat([prompt["attention_mask"], torch.ones_like(next_token)], dim=1)
    media = {k: v for k, v in prompt.items() if k not in ("input_ids", "attention_mask")}
    step = model.prepare_inputs_for_generation(ids, next_sequence_length=1, cache=cache, attention_mask=mask,
                                               use_cache=True, is_first_iteration=False, **media)
    assert step["input_ids"].shape == (ids.shape[0], 1) and not any(k in step for k in media)  # no media
    return step


def test_no_media_decode_step_compiles_with_fullgraph(model):
    assert model._can_compile_fullgraph
    prompt = make_sample(model.config, ("motion", "video"), seed=1)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # graph capture only: no C++ build
    step = _decode_inputs(model, prompt)
    with torch.no_grad():
        got = compiled(**step).logits
    eager_step = _decode_inputs(model, prompt)
    with torch.no_grad():
        expected = model(**eager_step).logits
    torch.testing.assert_close(got, expected)


def test_generate_compiles_its_decode_steps_with_fullgraph(model):
    """`generate` with a static cache and a compile config runs its decode steps through the compiled forward
    (prefill with the media eager) and answers as the eager dynamic-cache generation does."""
    from transformers import CompileConfig

    prompt = make_sample(model.config, ("motion", "video"), seed=2)
    kwargs = {"max_new_tokens": 5, "min_new_tokens": 5, "do_sample": False, "pad_token_id": PAD_ID}
    torch._dynamo.reset()
    config = CompileConfig(fullgraph=True, backend="eager", mode=None, dynamic=False)
    config._compile_all_devices = True  # generate compiles on accelerators only unless told
    compiled = model.generate(**prompt, cache_implementation="static", compile_config=config, **kwargs)
    assert getattr(model, "_compiled_call", None) is not None  # the decode steps went through torch.compile
    dynamic = model.generate(**prompt, **kwargs)
    assert compiled.tolist() == dynamic.tolist()


def test_placeholders_in_a_prompt_without_media_still_warn(model, caplog):
    """The check that placeholders without media are read as text stays for prompts (more than one position)."""
    from transformers.utils import logging as hf_logging

    prompt = make_sample(model.config, ("motion",), seed=3)
    hf_logging.warning_once.cache_clear()  # said once per process: another test may have said it before
    with caplog.at_level("WARNING"):
        model(input_ids=prompt["input_ids"], attention_mask=prompt["attention_mask"])
    assert "read as text" in caplog.text
