"""Checkpoints saved by earlier versions keep loading, and the processor's components load the way transformers loads
any processor's components.

`tests/fixtures/legacy_checkpoint` was saved at commit 6186a77 (`make_legacy_checkpoint.py`), before the
transformers-5 multimodal layout, together with its inputs and the logits that code gave.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoFeatureExtractor, AutoModel, AutoProcessor
from transformers.models.auto.video_processing_auto import AutoVideoProcessor  # the top-level name needs torchvision

import humocon_hf  # noqa: F401  (registers the Auto classes)
from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
from humocon_hf.processing.processing_humocon import MotionVideoProcessor
from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor

LEGACY = Path(__file__).parent / "fixtures" / "legacy_checkpoint"


@pytest.fixture
def legacy_copy(tmp_path) -> Path:
    out = tmp_path / "legacy"
    shutil.copytree(LEGACY, out)
    return out


def test_legacy_processor_loads_with_auto_processor(legacy_copy, tmp_path):
    """The fixture was saved when the video component was `video_feature_extractor` (a feature extractor): it loads
    as today's `video_processor`, and saving it again writes only the standard name."""
    processor = AutoProcessor.from_pretrained(legacy_copy)
    assert isinstance(processor, MotionVideoProcessor)
    assert isinstance(processor.motion_feature_extractor, MotionFeatureExtractor)
    assert isinstance(processor.video_processor, HuMoConVideoProcessor)
    assert processor.video_processor.num_frames == 2 and processor.video_processor.size == {"height": 32, "width": 32}
    assert processor.video_feature_extractor is processor.video_processor  # the old attribute name still reads
    assert processor.motion_feature_extractor.max_frames == 64
    assert (processor.motion_token_id, processor.video_token_id) == (120, 121)
    processor.save_pretrained(tmp_path / "resaved")
    settings = json.loads((tmp_path / "resaved" / "processor_config.json").read_text())
    assert "video_feature_extractor" not in settings
    assert settings["video_processor"]["video_processor_type"] == "HuMoConVideoProcessor"
    assert AutoProcessor.from_pretrained(tmp_path / "resaved").video_processor.to_dict() == processor.video_processor.to_dict()


def test_processor_components_load_through_transformers_auto_classes(legacy_copy, tmp_path):
    """transformers resolves a processor's components with its Auto classes from the class name saved with each (no
    override of ours in between): the motion one through AutoFeatureExtractor, the video one through
    AutoVideoProcessor."""
    settings = json.loads((legacy_copy / "processor_config.json").read_text())
    motion = AutoFeatureExtractor.from_pretrained(legacy_copy, processor_config=settings["motion_feature_extractor"])
    assert isinstance(motion, MotionFeatureExtractor) and motion.max_frames == 64
    MotionVideoProcessor.from_pretrained(legacy_copy).save_pretrained(tmp_path / "new")
    settings = json.loads((tmp_path / "new" / "processor_config.json").read_text())
    video = AutoVideoProcessor.from_pretrained(tmp_path / "new", processor_config=settings["video_processor"])
    assert isinstance(video, HuMoConVideoProcessor) and video.num_frames == 2
    assert isinstance(AutoVideoProcessor.from_pretrained(tmp_path / "new"), HuMoConVideoProcessor)  # nested lookup
    assert "get_possibly_dynamic_module" not in MotionVideoProcessor.__dict__


def test_legacy_video_component_given_by_its_old_argument_name(legacy_copy):
    video = HuMoConVideoProcessor(num_frames=3, size=32, patch_size=8)
    processor = MotionVideoProcessor(AutoProcessor.from_pretrained(legacy_copy).tokenizer,
                                     video_feature_extractor=video)
    assert processor.video_processor is video
    with pytest.raises(ValueError, match="video_processor= .not also video_feature_extractor="):
        MotionVideoProcessor(processor.tokenizer, video_processor=video, video_feature_extractor=video)
    with pytest.raises(TypeError, match="video_processor must be a transformers VideoProcessorMixin.*MotionFeature"):
        MotionVideoProcessor(processor.tokenizer, video_processor=MotionFeatureExtractor())


def test_remote_code_components_name_their_classes(legacy_copy, tmp_path):
    processor = MotionVideoProcessor.from_pretrained(legacy_copy)
    processor.save_pretrained(tmp_path / "remote", export_remote_code=True)
    settings = json.loads((tmp_path / "remote" / "processor_config.json").read_text())
    assert settings["motion_feature_extractor"]["auto_map"]["AutoFeatureExtractor"].endswith(".MotionFeatureExtractor")
    assert settings["video_processor"]["auto_map"]["AutoVideoProcessor"].endswith(".HuMoConVideoProcessor")
    # a native save after the export stays free of auto_map
    processor.save_pretrained(tmp_path / "native")
    native = json.loads((tmp_path / "native" / "processor_config.json").read_text())
    assert "auto_map" not in json.dumps(native)


# ------------------------------------------------------------------------------------------------ model layout


def _reference_io():
    reference = load_file(str(LEGACY / "reference_io.safetensors"))
    return reference, reference.pop("expected_logits")


def test_legacy_checkpoint_loads_every_weight_and_gives_the_same_logits(legacy_copy):
    model, info = AutoModel.from_pretrained(legacy_copy, output_loading_info=True)
    assert isinstance(model, HuMoConForCausalLM)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    inputs, expected = _reference_io()
    with torch.no_grad():
        logits = model.eval()(**inputs).logits
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)  # bit-exactness differs between CPUs
    assert model.lm_head.weight.data_ptr() == model.language_model.embed_tokens.weight.data_ptr()  # still tied


def test_saving_keeps_the_checkpoint_layout(legacy_copy, tmp_path):
    """In memory the parts sit under `model` (transformers 5's multimodal layout); on disk the keys stay those of
    earlier versions, so checkpoints move between versions in both directions."""
    from safetensors import safe_open

    model = HuMoConForCausalLM.from_pretrained(legacy_copy).eval()
    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as saved, safe_open(
        str(legacy_copy / "model.safetensors"), "pt"
    ) as legacy:
        assert set(saved.keys()) == set(legacy.keys())
    assert any(name.startswith("model.language_model.") for name, _ in model.named_parameters())
    reloaded = HuMoConForCausalLM.from_pretrained(tmp_path).eval()
    inputs, expected = _reference_io()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, expected, rtol=1e-5, atol=1e-5)  # bit-exactness differs between CPUs


def test_base_model_is_the_multimodal_model(legacy_copy):
    from humocon_hf.modeling.modeling_humocon import HuMoConModel

    model = HuMoConForCausalLM.from_pretrained(legacy_copy).eval()
    assert isinstance(model.base_model, HuMoConModel) and model.base_model is model.model
    assert model.get_decoder() is model.model.language_model
    inputs, _ = _reference_io()
    with torch.no_grad():
        hidden = model.model(**inputs).last_hidden_state
        torch.testing.assert_close(model.lm_head(hidden), model(**inputs).logits, rtol=0, atol=0)


def test_modality_features_are_a_model_output(legacy_copy):
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    model = HuMoConForCausalLM.from_pretrained(legacy_copy).eval()
    inputs, _ = _reference_io()
    with torch.no_grad():
        motion = model.get_motion_features(inputs["motion_values"], inputs["motion_attention_mask"])
        video = model.get_video_features(inputs["pixel_values_videos"])
        as_tuple = model.get_motion_features(inputs["motion_values"], return_dict=False)
        out = model(**inputs)
    assert isinstance(motion, BaseModelOutputWithPooling) and isinstance(video, BaseModelOutputWithPooling)
    hidden = model.config.text_config.hidden_size
    assert motion.pooler_output.shape == (1, 3, hidden)  # ceil(10 frames / stride 4)
    assert motion.attention_mask.dtype == torch.long and int(motion.attention_mask.sum()) == 3
    assert motion.concept_ids.shape == (1, 3)
    torch.testing.assert_close(out.motion_hidden_states, motion.pooler_output[0], rtol=0, atol=0)
    torch.testing.assert_close(out.video_hidden_states, video.pooler_output[0], rtol=0, atol=0)
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[1], motion.pooler_output, rtol=0, atol=0)


def test_a_saved_checkpoint_file_loads_into_the_module_as_trainer_resumes_it(legacy_copy, tmp_path):
    """`Trainer` resumes a full-model checkpoint with `model.load_state_dict(load_file(...), strict=False)`. The file
    is in the checkpoint layout, the module in transformers 5's: before the renaming nothing matched, nothing loaded,
    and a resumed stage 2 restarted from its initial projector weights without a word."""
    trained = HuMoConForCausalLM.from_pretrained(legacy_copy).eval()
    trained.save_pretrained(tmp_path)
    fresh = HuMoConForCausalLM(trained.config).eval()
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()
    result = fresh.load_state_dict(load_file(str(tmp_path / "model.safetensors")), strict=False)
    assert not result.unexpected_keys
    assert set(result.missing_keys) <= {"lm_head.weight"}  # tied to the input embeddings, not stored
    for (name, a), (_, b) in zip(trained.state_dict().items(), fresh.state_dict().items(), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=name)
    with pytest.raises(RuntimeError, match="Missing key"):  # strict loading still names what is missing
        fresh.load_state_dict({"motion_projector.linear_1.bias": trained.motion_projector.linear_1.bias})
