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

import humocon_hf  # noqa: F401  (registers the Auto classes)
from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
from humocon_hf.processing.processing_humocon import MotionVideoProcessor
from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor
from transformers import AutoFeatureExtractor, AutoModel, AutoProcessor

LEGACY = Path(__file__).parent / "fixtures" / "legacy_checkpoint"


@pytest.fixture
def legacy_copy(tmp_path) -> Path:
    out = tmp_path / "legacy"
    shutil.copytree(LEGACY, out)
    return out


def test_legacy_processor_loads_with_auto_processor(legacy_copy):
    processor = AutoProcessor.from_pretrained(legacy_copy)
    assert isinstance(processor, MotionVideoProcessor)
    assert isinstance(processor.motion_feature_extractor, MotionFeatureExtractor)
    assert isinstance(processor.video_feature_extractor, HuMoConVideoProcessor)
    assert processor.video_feature_extractor.num_frames == 2
    assert processor.motion_feature_extractor.max_frames == 64
    assert (processor.motion_token_id, processor.video_token_id) == (120, 121)


def test_processor_components_load_through_auto_feature_extractor(legacy_copy):
    """transformers resolves a processor's components with `AutoFeatureExtractor` from the class name saved with each
    (no override of ours in between): both classes must be known to it by name."""
    settings = json.loads((legacy_copy / "processor_config.json").read_text())
    motion = AutoFeatureExtractor.from_pretrained(legacy_copy, processor_config=settings["motion_feature_extractor"])
    video = AutoFeatureExtractor.from_pretrained(legacy_copy, processor_config=settings["video_feature_extractor"])
    assert isinstance(motion, MotionFeatureExtractor) and motion.max_frames == 64
    assert isinstance(video, HuMoConVideoProcessor) and video.num_frames == 2
    assert "get_possibly_dynamic_module" not in MotionVideoProcessor.__dict__


def test_remote_code_components_name_their_classes(legacy_copy, tmp_path):
    processor = MotionVideoProcessor.from_pretrained(legacy_copy)
    processor.save_pretrained(tmp_path / "remote", export_remote_code=True)
    settings = json.loads((tmp_path / "remote" / "processor_config.json").read_text())
    assert settings["motion_feature_extractor"]["auto_map"]["AutoFeatureExtractor"].endswith(".MotionFeatureExtractor")
    assert settings["video_feature_extractor"]["auto_map"]["AutoFeatureExtractor"].endswith(".HuMoConVideoProcessor")
    # a native save after the export stays free of auto_map
    processor.save_pretrained(tmp_path / "native")
    native = json.loads((tmp_path / "native" / "processor_config.json").read_text())
    assert "auto_map" not in json.dumps(native)
