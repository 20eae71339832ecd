"""Configuration of the HuMoCon question-answering model (LLM + motion/video concept encoders + projectors).

Remote-code rule: this file imports only external libraries and same-folder modules (`from .x import Y`).
"""

from typing import ClassVar

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .configuration_humocon_encoders import (
    HuMoConMotionEncoderConfig,
    HuMoConVideoEncoderConfig,
)

# A deliberately tiny Llama so that `HuMoConConfig()` never silently becomes a 7B model (a default-less
# `text_config` would fall back to LlamaConfig's 4096-wide, 32-layer defaults). Real checkpoints always
# carry the text config of the LLM they were built from (SmolLM2-135M-Instruct, Llama-3.1-8B, ...).
TINY_TEXT_CONFIG_DEFAULTS = {
    "vocab_size": 1024,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": True,
}


@strict
class HuMoConConfig(PreTrainedConfig):
    r"""
    Configuration of [`HuMoConForCausalLM`]: a causal LLM that reads motion and video through frozen
    concept encoders and one projector per modality.

    Args:
        text_config (`dict` or `PreTrainedConfig`, *optional*):
            Config of the LLM (any model type `AutoModelForCausalLM` knows; `llama` when a dict has no
            `model_type`). Defaults to a tiny 2-layer Llama (hidden 64) meant for tests only.
        motion_config (`dict` or `HuMoConMotionEncoderConfig`, *optional*):
            Config of the motion concept encoder.
        video_config (`dict` or `HuMoConVideoEncoderConfig`, *optional*):
            Config of the video concept encoder (SigLIP tower + VQ codebook).
        motion_token_id (`int`, *optional*):
            Id of the `<motion>` placeholder token. Each placeholder receives one projected motion feature.
        video_token_id (`int`, *optional*):
            Id of the `<video>` placeholder token. Each placeholder receives one projected video feature.
        motion_token_stride (`int`, *optional*, defaults to 4):
            Frames per motion token: a clip with `T` valid frames gives `ceil(T / stride)` tokens. Must agree
            with the motion encoder and the processor.
        video_tokens_per_frame (`int`, *optional*, defaults to 1):
            Tokens per video key frame. Must agree with the video encoder and the processor.
        projector_hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation between the two linear layers of each modality projector.
        projector_bias (`bool`, *optional*, defaults to `True`):
            Whether the projector linear layers have a bias.
        use_motion_quantized (`bool`, *optional*, defaults to `True`):
            Feed the LLM the motion encoder's *quantised* features (the codebook vectors of the discovered
            concepts, HuMoCon's point) instead of its continuous pre-quantisation features
            (`last_hidden_state`). Continuous features carry more detail but are not tied to concepts.
        motion_projector_reads_poses (`bool`, *optional*, defaults to `False`):
            Also hand the motion projector each token's own frames (its `motion_token_stride` normalised pose
            feature vectors, concatenated) next to the encoder's features: a residual path for details the concepts
            drop, such as which side's limb moves. Not in the paper (which projects the concepts only).
        use_video_quantized (`bool`, *optional*, defaults to `True`):
            Same choice for the video encoder.
        freeze_encoders (`bool`, *optional*, defaults to `True`):
            Keep both concept encoders frozen (no gradients, always in eval mode so VQ codebooks never update)
            during stages 2 and 3, as in the paper.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Std of the normal initialisation of the projectors.
        tie_word_embeddings (`bool`, *optional*):
            Mirrors `text_config.tie_word_embeddings`; the LLM ties its own weights.

    Example:

    ```python
    >>> from humocon_hf.modeling import HuMoConConfig, HuMoConForCausalLM
    >>> config = HuMoConConfig(motion_token_id=1000, video_token_id=1001)
    >>> model = HuMoConForCausalLM(config)
    ```
    """

    model_type = "humocon"
    # Trainer.evaluate/predict: only the logits are predictions; the cache and the modality features are not.
    keys_to_ignore_at_inference: ClassVar[list[str]] = [
        "cache",
        "past_key_values",
        "hidden_states",
        "attentions",
        "motion_hidden_states",
        "video_hidden_states",
        "motion_concept_ids",
        "video_concept_ids",
    ]
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "text_config": SubConfigSpec(
            config_class=AutoConfig,
            model_type="llama",
            init_kwargs=TINY_TEXT_CONFIG_DEFAULTS,
        ),
        "motion_config": SubConfigSpec(config_class=HuMoConMotionEncoderConfig),
        "video_config": SubConfigSpec(config_class=HuMoConVideoEncoderConfig),
    }

    text_config: dict | PreTrainedConfig | None = None
    motion_config: dict | PreTrainedConfig | None = None
    video_config: dict | PreTrainedConfig | None = None
    motion_token_id: int | None = None
    video_token_id: int | None = None
    motion_token_stride: int = 4
    video_tokens_per_frame: int = 1
    projector_hidden_act: str = "gelu"
    projector_bias: bool = True
    use_motion_quantized: bool = True
    motion_projector_reads_poses: bool = False
    use_video_quantized: bool = True
    freeze_encoders: bool = True
    initializer_range: float | int = 0.02
    tie_word_embeddings: bool | None = None

    def __post_init__(self, **kwargs):
        # A dict text config without `model_type` is a Llama; fill the tiny defaults only for missing keys
        # so a partial dict (e.g. just `vocab_size`) stays tiny instead of inheriting 7B-sized defaults.
        if isinstance(self.text_config, dict):
            text_kwargs = dict(self.text_config)
            if text_kwargs.get("model_type", "llama") == "llama":
                text_kwargs = {**TINY_TEXT_CONFIG_DEFAULTS, **text_kwargs}
            self.text_config = text_kwargs
        super().__post_init__(**kwargs)
        if self.tie_word_embeddings is None:
            self.tie_word_embeddings = bool(
                getattr(self.text_config, "tie_word_embeddings", False)
            )

    def validate_token_counts(self):
        """Part of `@strict` validation: the tokens per motion stride / video frame, as the encoders produce them."""
        if self.motion_token_stride < 1:
            raise ValueError(f"motion_token_stride must be >= 1, got {self.motion_token_stride}")
        if self.video_tokens_per_frame < 1:
            raise ValueError(f"video_tokens_per_frame must be >= 1, got {self.video_tokens_per_frame}")
        for name, sub, attr in (
            ("motion_config", self.motion_config, "motion_token_stride"),
            ("video_config", self.video_config, "video_tokens_per_frame"),
        ):
            sub_value = getattr(sub, attr, None)
            if sub_value is not None and sub_value != getattr(self, attr):
                raise ValueError(
                    f"HuMoConConfig.{attr}={getattr(self, attr)} disagrees with {name}.{attr}={sub_value}; the "
                    "processor, the encoder and the model must use the same token count"
                )

    def validate_placeholder_ids(self):
        """Part of `@strict` validation: `<motion>` and `<video>` are different tokens."""
        if self.motion_token_id is not None and self.motion_token_id == self.video_token_id:
            raise ValueError(f"motion_token_id and video_token_id must differ, both are {self.motion_token_id}")


__all__ = ["HuMoConConfig"]
