"""What a recipe's `model` section builds: the concept-discovery config and model (stage 1), the LLM's tokenizer with
the `<motion>` / `<video>` placeholders, the `MotionVideoProcessor`, and the QA collator of stages 2-3."""

from __future__ import annotations

from typing import TYPE_CHECKING

from humocon_hf.processing.chat_template import typed_chat_template

if TYPE_CHECKING:
    from humocon_hf.modeling.modeling_humocon_encoders import HuMoConMotionEncoder
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor
    from humocon_hf.recipes import DataArguments, ModelArguments, PretrainArguments


def build_concept_config(model_args: ModelArguments, pargs: PretrainArguments | None = None):
    """`HuMoConConceptDiscoveryConfig` for the recipe: the small preset or paper sizes, with the recipe's codebook
    size, token stride and loss settings."""
    from humocon_hf.modeling.configuration_humocon_encoders import HuMoConConceptDiscoveryConfig

    overrides = dict(model_args.encoder_overrides or {})
    motion = dict(overrides.pop("motion_config", {}) or {})
    video = dict(overrides.pop("video_config", {}) or {})
    motion["motion_token_stride"] = model_args.motion_token_stride
    if model_args.codebook_size is not None:
        motion["codebook_size"] = model_args.codebook_size
        video["codebook_size"] = model_args.codebook_size
    if model_args.vision_model_name_or_path is not None:
        video["vision_model_name_or_path"] = model_args.vision_model_name_or_path
    if pargs is not None:
        if pargs.mask_ratio is not None:
            motion["mask_ratio"] = pargs.mask_ratio
            video["mask_ratio"] = pargs.mask_ratio
        for name in ("lambda_dis", "lambda_velocity", "lambda_align"):
            if getattr(pargs, name) is not None:
                overrides[name] = getattr(pargs, name)
    if model_args.encoder_preset == "small":
        if model_args.vision_model_name_or_path is not None:
            video.setdefault("vision_config", None)
        return HuMoConConceptDiscoveryConfig.small(motion_config=motion, video_config=video, **overrides)
    return HuMoConConceptDiscoveryConfig(motion_config=motion, video_config=video, **overrides)


def build_concept_model(model_args: ModelArguments, pargs: PretrainArguments | None = None):
    from humocon_hf.modeling.modeling_humocon_concept_discovery import HuMoConForConceptDiscovery

    config = build_concept_config(model_args, pargs)
    if model_args.vision_model_name_or_path:
        return HuMoConForConceptDiscovery.from_vision_tower(model_args.vision_model_name_or_path, config=config)
    return HuMoConForConceptDiscovery(config)


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    from humocon_hf.llm import DEFAULT_LLM_NAME, convert_smollm2

    if name_or_path in (None, DEFAULT_LLM_NAME):
        return AutoTokenizer.from_pretrained(convert_smollm2())
    return AutoTokenizer.from_pretrained(name_or_path)


def build_processor(model_args: ModelArguments, data_args: DataArguments) -> MotionVideoProcessor:
    """MotionVideoProcessor for the recipe: the LLM's tokenizer, a motion feature extractor at 20 fps truncating at
    `data.max_frames`, a video processor sized for the video encoder's tower."""
    from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor
    from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor

    config = build_concept_config(model_args)
    vision = config.video_config.vision_config
    tokenizer = load_tokenizer(model_args.llm_name_or_path)
    return MotionVideoProcessor(
        tokenizer=tokenizer,
        chat_template=typed_chat_template(getattr(tokenizer, "chat_template", None)),
        motion_feature_extractor=MotionFeatureExtractor(max_frames=data_args.max_frames),
        video_processor=HuMoConVideoProcessor(size=vision.image_size, patch_size=vision.patch_size),
        motion_token_stride=config.motion_config.motion_token_stride,
        video_tokens_per_frame=config.video_config.video_tokens_per_frame,
    )


def concepts_used(
    motion_encoder: HuMoConMotionEncoder, processor: MotionVideoProcessor, motions: list
) -> int | None:
    import torch

    if not motions:
        return None
    batch = processor.motion_feature_extractor(motions, padding="longest", return_tensors="pt")
    with torch.no_grad():
        concepts = motion_encoder.get_concepts(batch["motion_values"], batch["motion_attention_mask"])
    return int(len({int(c) for item in concepts for c in item["token_concept_ids"].tolist()}))
