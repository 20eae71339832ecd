"""Forward signatures as transformers' own models declare them (issue 29): `**kwargs: Unpack[TransformersKwargs]`,
no deprecated `config.use_return_dict`, and the Trainer's loss-kwargs decision unchanged (the QA model normalises
its loss by `num_items_in_batch`; the encoders take no loss kwargs, DESIGN section 3)."""

import inspect
import typing

import pytest
import torch
from humocon_tiny import MOTION_FEATURES, tiny_config
from transformers.utils import TransformersKwargs

from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM, HuMoConModel
from humocon_hf.modeling.modeling_humocon_concept_discovery import HuMoConForConceptDiscovery
from humocon_hf.modeling.modeling_humocon_encoders import HuMoConMotionEncoder, HuMoConVideoEncoder

torch.set_num_threads(1)


@pytest.mark.parametrize("cls", [HuMoConModel, HuMoConForCausalLM])
def test_forward_kwargs_are_typed_transformers_kwargs(cls):
    parameter = inspect.signature(cls.forward).parameters["kwargs"]
    assert parameter.kind is inspect.Parameter.VAR_KEYWORD
    annotation = parameter.annotation
    if isinstance(annotation, str):  # postponed annotations
        annotation = eval(annotation, vars(inspect.getmodule(cls)))
    assert typing.get_origin(annotation) is typing.Unpack and typing.get_args(annotation) == (TransformersKwargs,)


def test_no_deprecated_use_return_dict(caplog):
    from transformers.utils import logging as hf_logging

    torch.manual_seed(0)
    model = HuMoConForCausalLM(tiny_config()).eval()
    hf_logging.warning_once.cache_clear()
    with caplog.at_level("WARNING"), torch.no_grad():
        features = model.get_motion_features(torch.randn(1, 8, MOTION_FEATURES))
    assert "use_return_dict" not in caplog.text
    assert features.pooler_output.shape[0] == 1  # config.return_dict (True) still decides


def test_trainer_loss_kwargs_decision_unchanged(tmp_path):
    """`Trainer` passes `num_items_in_batch` to the QA model (its loss divides by it) and not to the encoders."""
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(str(tmp_path), report_to=[], use_cpu=True)
    torch.manual_seed(0)
    qa = Trainer(model=HuMoConForCausalLM(tiny_config()), args=args)
    assert qa.model_accepts_loss_kwargs
    for cls in (HuMoConMotionEncoder, HuMoConVideoEncoder, HuMoConForConceptDiscovery):
        assert cls.accepts_loss_kwargs is False
