"""Native Auto-class registration: with humocon-hf installed, `AutoModel.from_pretrained(...)` on a HuMoCon
checkpoint gives `HuMoConForCausalLM` without `trust_remote_code` (a locally registered class also wins over
any remote code a checkpoint carries)."""

from __future__ import annotations


def register_auto_classes() -> None:
    """Register HuMoCon with AutoConfig, AutoModel, AutoModelForCausalLM, AutoProcessor, the processor's motion
    feature extractor with AutoFeatureExtractor and its video processor with AutoVideoProcessor (idempotent).

    The concept encoders and the stage-1 model are registered with AutoConfig / AutoModel too, so their checkpoints
    load through the Auto classes.
    """
    from transformers import (
        AutoConfig,
        AutoFeatureExtractor,
        AutoModel,
        AutoModelForCausalLM,
        AutoProcessor,
    )

    # transformers' top-level AutoVideoProcessor is a placeholder demanding torchvision when it is absent; the class in
    # its module needs none, and it is the one processor loading uses
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor

    from humocon_hf.modeling.configuration_humocon import HuMoConConfig
    from humocon_hf.modeling.configuration_humocon_encoders import (
        HuMoConConceptDiscoveryConfig,
        HuMoConMotionEncoderConfig,
        HuMoConVideoEncoderConfig,
    )
    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
    from humocon_hf.modeling.modeling_humocon_concept_discovery import HuMoConForConceptDiscovery
    from humocon_hf.modeling.modeling_humocon_encoders import HuMoConMotionEncoder, HuMoConVideoEncoder
    from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor
    from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor

    AutoConfig.register(HuMoConConfig.model_type, HuMoConConfig, exist_ok=True)
    AutoModel.register(HuMoConConfig, HuMoConForCausalLM, exist_ok=True)
    AutoModelForCausalLM.register(HuMoConConfig, HuMoConForCausalLM, exist_ok=True)
    AutoProcessor.register(HuMoConConfig, MotionVideoProcessor, exist_ok=True)
    # The processor's components, one per encoder, found by the class name saved with them: this is how
    # transformers' processor loading resolves components (one registered class per config class). The video
    # processor has no torchvision / PIL variants (it decodes with OpenCV): the same class serves every backend name.
    AutoFeatureExtractor.register(HuMoConMotionEncoderConfig, MotionFeatureExtractor, exist_ok=True)
    AutoVideoProcessor.register(HuMoConVideoEncoderConfig, video_processor_classes={
        "torchvision": HuMoConVideoProcessor, "pil": HuMoConVideoProcessor}, exist_ok=True)

    for config_class, model_class in (
        (HuMoConMotionEncoderConfig, HuMoConMotionEncoder),
        (HuMoConVideoEncoderConfig, HuMoConVideoEncoder),
        (HuMoConConceptDiscoveryConfig, HuMoConForConceptDiscovery),
    ):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)


__all__ = ["register_auto_classes"]
