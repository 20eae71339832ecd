"""Configurations of the HuMoCon concept-discovery encoders (stage 1 of HuMoCon).

Three configs:

- [`HuMoConMotionEncoderConfig`]: transformer over per-frame pose features, strided in time, with a VQ codebook
  whose codes are the discovered motion concepts, plus the size of its masked-reconstruction decoder.
- [`HuMoConVideoEncoderConfig`]: a SigLIP vision tower over key frames (``vision_config``), a small trainable
  temporal adapter, a VQ codebook and the size of its (12-layer) feature-reconstruction decoder.
- [`HuMoConConceptDiscoveryConfig`]: both encoders plus the heads of the four objectives (hyper-network,
  velocity decoders, alignment projectors), the loss weights and the ablation switches.

Remote-code rule: this file imports only external libraries (``from .x import Y`` for same-folder files).
"""

from typing import ClassVar

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig, SiglipVisionConfig
from transformers.configuration_utils import SubConfigSpec


def _check_vq_fields(config, name: str) -> None:
    if config.codebook_size < 2:
        raise ValueError(
            f"{name}.codebook_size must be >= 2, got {config.codebook_size}"
        )
    if not 0.0 < config.ema_decay < 1.0:
        raise ValueError(f"{name}.ema_decay must be in (0, 1), got {config.ema_decay}")
    if config.dead_code_threshold < 0:
        raise ValueError(
            f"{name}.dead_code_threshold must be >= 0, got {config.dead_code_threshold}"
        )
    if not 0.0 <= config.mask_ratio < 1.0:
        raise ValueError(
            f"{name}.mask_ratio must be in [0, 1), got {config.mask_ratio}"
        )
    if config.hidden_size % config.num_attention_heads:
        raise ValueError(
            f"{name}.hidden_size={config.hidden_size} is not divisible by "
            f"num_attention_heads={config.num_attention_heads}"
        )
    if config.decoder_hidden_size % config.decoder_num_attention_heads:
        raise ValueError(
            f"{name}.decoder_hidden_size={config.decoder_hidden_size} is not divisible by "
            f"decoder_num_attention_heads={config.decoder_num_attention_heads}"
        )


@strict
class HuMoConMotionEncoderConfig(PreTrainedConfig):
    r"""
    Configuration of [`HuMoConMotionEncoder`]: per-frame pose features `(T, feature_size)` → a strided convolution
    (token `j` covers frames `[j * motion_token_stride, (j + 1) * motion_token_stride)`) → a transformer → a VQ
    codebook of `codebook_size` concepts. Defaults follow the HuMoCon paper (4-layer encoder, codebook 512, 2-layer
    reconstruction decoder).

    Args:
        feature_size (`int`, *optional*, defaults to 137): width of the per-frame features of
            `MotionFeatureExtractor`.
        hidden_size (`int`, *optional*, defaults to 512): transformer width.
        num_hidden_layers (`int`, *optional*, defaults to 4): encoder layers.
        num_attention_heads (`int`, *optional*, defaults to 8): attention heads.
        intermediate_size (`int`, *optional*, defaults to 2048): feed-forward width.
        hidden_dropout (`float`, *optional*, defaults to 0.1): dropout inside the transformer layers.
        motion_token_stride (`int`, *optional*, defaults to 4): frames per token; a clip with `T` valid frames gives
            `ceil(T / stride)` tokens. Must agree with the processor and the LLM config.
        codebook_size (`int`, *optional*, defaults to 512): number of concepts.
        codebook_dim (`int`, *optional*): width of the codebook vectors (the `quantized` features). Defaults to
            `hidden_size` (no projection around the quantiser).
        ema_decay (`float`, *optional*, defaults to 0.99): EMA decay of the codebook statistics.
        dead_code_threshold (`float`, *optional*, defaults to 1.0): a code whose EMA usage count falls below this is
            re-initialised from a random encoder feature of the current step.
        commitment_weight (`float`, *optional*, defaults to 0.25): weight of the VQ commitment loss.
        decoder_hidden_size (`int`, *optional*): width of the reconstruction decoder (defaults to `hidden_size`).
        decoder_num_layers (`int`, *optional*, defaults to 2): reconstruction decoder layers.
        decoder_num_attention_heads (`int`, *optional*, defaults to 8): reconstruction decoder heads.
        mask_ratio (`float`, *optional*, defaults to 0.25): fraction σ of quantised tokens replaced by the mask
            embedding before reconstruction.
        initializer_range (`float`, *optional*, defaults to 0.02): std of the normal weight init.
        concept_descriptions (`dict[str, str]`, *optional*): the concepts in words, `{concept id: description}`
            ("left arm raising", "both legs stepping, travelling at 1.3 m/s"), measured on the training motions
            after training (`humocon_hf.concepts.describe_concepts`); shown by concept timelines and `humocon ask
            --concepts`.
    """

    model_type = "humocon_motion_encoder"
    base_config_key = "motion_config"

    feature_size: int = 137
    hidden_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    hidden_dropout: float | int = 0.1
    motion_token_stride: int = 4
    codebook_size: int = 512
    codebook_dim: int | None = None
    ema_decay: float | int = 0.99
    dead_code_threshold: float | int = 1.0
    commitment_weight: float | int = 0.25
    decoder_hidden_size: int | None = None
    decoder_num_layers: int = 2
    decoder_num_attention_heads: int = 8
    mask_ratio: float | int = 0.25
    initializer_range: float | int = 0.02
    concept_descriptions: dict | None = None

    def __post_init__(self, **kwargs):
        if isinstance(self.concept_descriptions, dict):
            self.concept_descriptions = {str(k): v for k, v in self.concept_descriptions.items()}
        if self.codebook_dim is None:
            self.codebook_dim = self.hidden_size
        if self.decoder_hidden_size is None:
            self.decoder_hidden_size = self.hidden_size
        super().__post_init__(**kwargs)

    def validate_concept_descriptions(self):
        """Part of `@strict` validation: concept ids (as strings) to words."""
        if self.concept_descriptions is not None and not all(
            k.lstrip("-").isdigit() and isinstance(v, str) for k, v in self.concept_descriptions.items()
        ):
            raise ValueError("concept_descriptions must map concept ids to strings, e.g. {'3': 'left arm raising'}")

    def validate_sizes(self):
        """Part of `@strict` validation: input width, token stride and the codebook's settings."""
        if self.feature_size < 1:
            raise ValueError(f"feature_size must be >= 1, got {self.feature_size}")
        if self.motion_token_stride < 1:
            raise ValueError(f"motion_token_stride must be >= 1, got {self.motion_token_stride}")
        _check_vq_fields(self, "HuMoConMotionEncoderConfig")


# Small SigLIP tower used by the `small()` presets (tests, CPU demos): 32x32 key frames, 8x8 patches, 2 layers.
SMALL_VISION_CONFIG = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
    "vision_use_head": False,
}


@strict
class HuMoConVideoEncoderConfig(PreTrainedConfig):
    r"""
    Configuration of [`HuMoConVideoEncoder`]: a SigLIP vision tower encodes each key frame, its patch features are
    average-pooled to `video_tokens_per_frame` tokens, a small trainable temporal transformer (the adapter that the
    concept objectives train while the tower stays frozen) produces the per-token state, and a VQ codebook gives the
    concept ids. The 12-layer decoder reconstructs the pooled tower features of masked tokens.

    Args:
        vision_config (`dict` or `SiglipVisionConfig`, *optional*): config of the tower. Defaults to
            SigLIP-base-patch16-224's vision config.
        vision_model_name_or_path (`str`, *optional*, defaults to `"google/siglip-base-patch16-224"`): where
            [`HuMoConVideoEncoder.from_vision_tower`] loads pre-trained tower weights from (a Hub id or a local
            folder saved with `save_pretrained`; a full `SiglipModel` checkpoint works). Only used by that
            constructor; `from_pretrained` of a HuMoCon checkpoint reads the tower from the checkpoint itself.
        freeze_vision_tower (`bool`, *optional*, defaults to `True`): keep the tower's weights fixed.
        hidden_size (`int`, *optional*, defaults to 512): width of the temporal adapter (the per-token state).
        num_hidden_layers (`int`, *optional*, defaults to 2): temporal adapter layers.
        num_attention_heads (`int`, *optional*, defaults to 8), intermediate_size (`int`, *optional*, defaults to
            2048), hidden_dropout (`float`, *optional*, defaults to 0.1): adapter layer shape.
        video_tokens_per_frame (`int`, *optional*, defaults to 1): tokens per key frame (a perfect square: the
            patch grid is average-pooled to a `sqrt(n) x sqrt(n)` grid). Must agree with the processor.
        time_embedding_scale (`float`, *optional*, defaults to 4.0): key-frame timestamps (seconds) are multiplied by
            this before the sinusoidal time embedding.
        codebook_size, codebook_dim, ema_decay, dead_code_threshold, commitment_weight: as for the motion encoder.
        decoder_hidden_size (`int`, *optional*, defaults to `hidden_size`), decoder_num_layers (`int`, *optional*,
            defaults to 12), decoder_num_attention_heads (`int`, *optional*, defaults to 8): feature-reconstruction
            decoder.
        mask_ratio (`float`, *optional*, defaults to 0.25): masked fraction σ of quantised tokens.
        flow_grid_size (`int`, *optional*, defaults to 4): the optical flow `video_flow` is average-pooled to a
            `flow_grid_size x flow_grid_size` grid per frame pair; the velocity decoder predicts those `2 * g * g`
            numbers.
        flow_scale (`float`, *optional*, defaults to 0.1): flow (pixels of the resized frame) is multiplied by this
            before the MSE so its scale is comparable to the motion features.
    """

    model_type = "humocon_video_encoder"
    base_config_key = "video_config"
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "vision_config": SubConfigSpec(config_class=SiglipVisionConfig)
    }

    vision_config: dict | PreTrainedConfig | None = None
    vision_model_name_or_path: str | None = "google/siglip-base-patch16-224"
    freeze_vision_tower: bool = True
    hidden_size: int = 512
    num_hidden_layers: int = 2
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    hidden_dropout: float | int = 0.1
    video_tokens_per_frame: int = 1
    time_embedding_scale: float | int = 4.0
    codebook_size: int = 512
    codebook_dim: int | None = None
    ema_decay: float | int = 0.99
    dead_code_threshold: float | int = 1.0
    commitment_weight: float | int = 0.25
    decoder_hidden_size: int | None = None
    decoder_num_layers: int = 12
    decoder_num_attention_heads: int = 8
    mask_ratio: float | int = 0.25
    flow_grid_size: int = 4
    flow_scale: float | int = 0.1
    initializer_range: float | int = 0.02

    def __post_init__(self, **kwargs):
        if self.codebook_dim is None:
            self.codebook_dim = self.hidden_size
        if self.decoder_hidden_size is None:
            self.decoder_hidden_size = self.hidden_size
        super().__post_init__(**kwargs)

    def validate_sizes(self):
        """Part of `@strict` validation: the token grid, the flow grid and the codebook's settings."""
        self.check_token_grid()
        if self.flow_grid_size < 1:
            raise ValueError(f"flow_grid_size must be >= 1, got {self.flow_grid_size}")
        _check_vq_fields(self, "HuMoConVideoEncoderConfig")

    def check_token_grid(self) -> None:
        """`video_tokens_per_frame` must be a square that fits the tower's patch grid."""
        side = round(self.video_tokens_per_frame**0.5)
        if (
            self.video_tokens_per_frame < 1
            or side * side != self.video_tokens_per_frame
        ):
            raise ValueError(
                f"video_tokens_per_frame must be a perfect square >= 1 (1, 4, 9, ...), got {self.video_tokens_per_frame}"
            )
        grid = self.vision_config.image_size // self.vision_config.patch_size
        if side > grid:
            raise ValueError(
                f"video_tokens_per_frame={self.video_tokens_per_frame} needs a {side}x{side} grid but the vision tower "
                f"has only {grid}x{grid} patches"
            )

    @property
    def patch_grid_size(self) -> int:
        """Patches per side of the tower's grid (`image_size // patch_size`); `video_flow` is pooled to this grid."""
        return self.vision_config.image_size // self.vision_config.patch_size


# The loss terms of `HuMoConForConceptDiscovery`'s output, one per objective plus the VQ commitment.
LOSS_COMPONENTS = (
    "loss_rec_motion",
    "loss_rec_video",
    "loss_dis",
    "loss_velocity",
    "loss_align",
    "loss_commit",
)


@strict
class HuMoConConceptDiscoveryConfig(PreTrainedConfig):
    r"""
    Configuration of [`HuMoConForConceptDiscovery`]: both encoders and the heads of the four concept-discovery
    objectives of HuMoCon. Total loss `L = L_rec + L_commit + λ_dis L_dis + λ_act L_act + λ_align L_align`.

    Args:
        motion_config (`dict` or `HuMoConMotionEncoderConfig`, *optional*): motion encoder.
        video_config (`dict` or `HuMoConVideoEncoderConfig`, *optional*): video encoder.
        classifier_dim (`int`, *optional*, defaults to 128): width of the generated classifier; the hyper-network
            generates a `classifier_dim x (classifier_dim + 1)` layer per code (InfoCon reference).
        hyper_hidden_size (`int`, *optional*, defaults to 128): hidden width of the 2-layer generator MLP.
        hyper_rank (`int`, *optional*, defaults to 2): the generator maps a code to `hyper_rank` numbers that mix as
            many learned basis matrices into the generated layer (low-rank generation).
        score_temperature (`float`, *optional*, defaults to 0.1): score = `sigmoid(cos(μ_k, h) / score_temperature)`.
        dis_num_negatives (`int`, *optional*): codes scored per state besides its own. `None` scores every code
            (the paper's Eq. 7); an integer samples that many random other codes per state (cheaper for big
            batches; the draws are random, so multi-process runs then differ from one process).
        velocity_hidden_size (`int`, *optional*, defaults to 512): hidden width of the 2-layer velocity decoders.
        alignment_dim (`int`, *optional*, defaults to 256): width of the shared video–motion space.
        alignment_temperature (`float`, *optional*, defaults to 0.07): InfoNCE temperature ε.
        motion_fps (`float`, *optional*, defaults to 20.0): frame rate of `motion_values`; video key frame `i`
            aligns with motion token `floor(video_timestamps[i] * motion_fps / motion_token_stride)`.
        lambda_dis, lambda_velocity, lambda_align (`float`, *optional*, default to 1.0): loss weights.
        use_masked_reconstruction (`bool`, *optional*, defaults to `True`): `False` reconstructs from unmasked
            quantised tokens (the paper's "w/o masked reconstruction" row: reconstruction stays, masking goes).
        use_discriminative, use_velocity_reconstruction, use_alignment (`bool`, *optional*, default to `True`): switch each
            objective off (its loss is `None` and its head receives no gradient).
    """

    model_type = "humocon_concept_discovery"
    # The names of checkpoints saved before the velocity objective took one name (0.1.0.dev0 until December 2026).
    attribute_map: ClassVar[dict[str, str]] = {"use_actionable": "use_velocity_reconstruction",
                                               "lambda_act": "lambda_velocity"}
    # Extra loss fields of the output are not predictions (Trainer.prediction_step drops them).
    keys_to_ignore_at_inference: ClassVar[list[str]] = [
        *LOSS_COMPONENTS,
        "motion_concept_ids",
        "video_concept_ids",
        "motion_token_mask",
    ]
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "motion_config": SubConfigSpec(config_class=HuMoConMotionEncoderConfig),
        "video_config": SubConfigSpec(config_class=HuMoConVideoEncoderConfig),
    }

    motion_config: dict | PreTrainedConfig | None = None
    video_config: dict | PreTrainedConfig | None = None
    classifier_dim: int = 128
    hyper_hidden_size: int = 128
    hyper_rank: int = 2
    score_temperature: float | int = 0.1
    dis_num_negatives: int | None = None
    velocity_hidden_size: int = 512
    alignment_dim: int = 256
    alignment_temperature: float | int = 0.07
    motion_fps: float | int = 20.0
    lambda_dis: float | int = 1.0
    lambda_velocity: float | int = 1.0
    lambda_align: float | int = 1.0
    use_masked_reconstruction: bool = True
    use_discriminative: bool = True
    use_velocity_reconstruction: bool = True
    use_alignment: bool = True
    initializer_range: float | int = 0.02

    def validate_objectives(self):
        """Part of `@strict` validation: temperatures, negatives and the motion frame rate."""
        if self.score_temperature <= 0 or self.alignment_temperature <= 0:
            raise ValueError(
                f"temperatures must be > 0, got score_temperature={self.score_temperature}, "
                f"alignment_temperature={self.alignment_temperature}"
            )
        if self.dis_num_negatives is not None and self.dis_num_negatives < 1:
            raise ValueError(
                f"dis_num_negatives must be None (all codes) or >= 1, got {self.dis_num_negatives}"
            )
        if self.motion_fps <= 0:
            raise ValueError(f"motion_fps must be > 0, got {self.motion_fps}")

    @classmethod
    def small(cls, **kwargs) -> "HuMoConConceptDiscoveryConfig":
        """A tiny preset (hidden 64, codebook 64, 2-layer encoders, 2-layer 32x32 SigLIP) that trains in minutes on
        a CPU. Keyword arguments override top-level fields; `motion_config` / `video_config` dicts are merged into
        the small sub-configs."""
        motion = {
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "hidden_dropout": 0.0,
            "codebook_size": 64,
            "decoder_num_layers": 2,
            "decoder_num_attention_heads": 4,
            "dead_code_threshold": 0.5,
        }
        video = {
            "vision_config": dict(SMALL_VISION_CONFIG),
            "vision_model_name_or_path": None,
            "hidden_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "hidden_dropout": 0.0,
            "codebook_size": 64,
            "decoder_num_layers": 2,
            "decoder_num_attention_heads": 4,
            "dead_code_threshold": 0.5,
            "flow_grid_size": 2,
        }
        motion.update(_as_dict(kwargs.pop("motion_config", None)))
        video.update(_as_dict(kwargs.pop("video_config", None)))
        defaults = {
            "classifier_dim": 32,
            "hyper_hidden_size": 32,
            "velocity_hidden_size": 64,
            "alignment_dim": 32,
        }
        defaults.update(kwargs)
        return cls(motion_config=motion, video_config=video, **defaults)


def _as_dict(value) -> dict:
    if value is None:
        return {}
    if isinstance(value, PreTrainedConfig):
        return value.to_dict()
    return dict(value)


__all__ = [
    "HuMoConConceptDiscoveryConfig",
    "HuMoConMotionEncoderConfig",
    "HuMoConVideoEncoderConfig",
]
