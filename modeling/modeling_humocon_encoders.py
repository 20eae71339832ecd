"""HuMoCon concept-discovery encoders and their stage-1 pre-training model.

- [`HuMoConMotionEncoder`]: per-frame pose features → strided temporal tokens → transformer → VQ concepts.
- [`HuMoConVideoEncoder`]: SigLIP vision tower over key frames → pooled frame tokens → temporal adapter → VQ concepts.
- [`HuMoConForConceptDiscovery`]: both encoders plus the heads of HuMoCon's four objectives (masked reconstruction,
  discriminative and actionable informativeness, video–motion alignment).

Remote-code rule: this file imports only external libraries and same-folder modules (`from .x import Y`).
"""

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, SiglipVisionModel
from transformers.utils import ModelOutput

from .configuration_humocon_encoders import (
    HuMoConConceptDiscoveryConfig,
    HuMoConMotionEncoderConfig,
    HuMoConVideoEncoderConfig,
)
from .vector_quantizer import HuMoConVectorQuantizer

# --------------------------------------------------------------------------------------------------------------------
# Outputs


@dataclass
class HuMoConEncoderOutput(ModelOutput):
    r"""
    Output of the concept encoders.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch, tokens, hidden_size)`): continuous per-token features.
        quantized (`torch.FloatTensor` of shape `(batch, tokens, codebook_dim)`): codebook vectors of the assigned
            concepts (straight-through: gradients reach the encoder).
        concept_ids (`torch.LongTensor` of shape `(batch, tokens)`): assigned concept per token, -1 on padding.
        attention_mask (`torch.LongTensor` of shape `(batch, tokens)`): 1 for valid tokens, 0 for padding (like
            transformers' attention masks; index with `attention_mask.bool()`).
        pre_quantized (`torch.FloatTensor` of shape `(batch, tokens, codebook_dim)`): the features that were quantised
            (the "state" of the informativeness objectives).
        commitment_loss (`torch.FloatTensor` of shape `()`): VQ commitment loss (already weighted).
        frame_features (`torch.FloatTensor` of shape `(batch, tokens, vision_hidden_size)`, *video only*): pooled
            vision-tower features, the target of the video reconstruction decoder.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True` is passed or
            `config.output_hidden_states=True`): the concept transformer's hidden states, one per layer plus the
            input of the first layer (after the positional / time embedding), each `(batch, tokens, hidden_size)`.
            They precede the transformer's final LayerNorm: `last_hidden_state == encoder.norm(hidden_states[-1])`.
            For the video encoder these are the temporal transformer's; the SigLIP tower's are not included.
        attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True` is passed or
            `config.output_attentions=True`): the concept transformer's self-attention probabilities, one per layer,
            each `(batch, num_attention_heads, tokens, tokens)` (before attention dropout; padded keys get 0). They
            come from a separate computation that does not feed the output, so no gradient reaches them from it.
    """

    last_hidden_state: torch.FloatTensor | None = None
    quantized: torch.FloatTensor | None = None
    concept_ids: torch.LongTensor | None = None
    attention_mask: torch.LongTensor | None = None
    pre_quantized: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    frame_features: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class ConceptDiscoveryOutput(ModelOutput):
    r"""
    Output of [`HuMoConForConceptDiscovery`]. Components of switched-off objectives (or of an absent modality) are
    `None`.

    Args:
        loss (`torch.FloatTensor` of shape `()`): `L_rec + L_commit + λ_dis L_dis + λ_act L_act + λ_align L_align`.
        loss_rec_motion, loss_rec_video (`torch.FloatTensor` of shape `()`): masked-reconstruction MSE.
        loss_dis (`torch.FloatTensor` of shape `()`): discriminative BCE, summed over modalities.
        loss_act (`torch.FloatTensor` of shape `()`): velocity-reconstruction MSE, summed over modalities.
        loss_align (`torch.FloatTensor` of shape `()`): video→motion InfoNCE over the paired samples.
        loss_commit (`torch.FloatTensor` of shape `()`): VQ commitment losses, summed over modalities.
        motion_concept_ids (`torch.LongTensor` of shape `(batch_motion, motion_tokens)`): -1 on padding.
        video_concept_ids (`torch.LongTensor` of shape `(batch_video, video_tokens)`).
        motion_token_mask (`torch.LongTensor` of shape `(batch_motion, motion_tokens)`): 1 for valid motion tokens.
    """

    loss: torch.FloatTensor | None = None
    loss_rec_motion: torch.FloatTensor | None = None
    loss_rec_video: torch.FloatTensor | None = None
    loss_dis: torch.FloatTensor | None = None
    loss_act: torch.FloatTensor | None = None
    loss_align: torch.FloatTensor | None = None
    loss_commit: torch.FloatTensor | None = None
    motion_concept_ids: torch.LongTensor | None = None
    video_concept_ids: torch.LongTensor | None = None
    motion_token_mask: torch.LongTensor | None = None


LOSS_COMPONENTS = (
    "loss_rec_motion",
    "loss_rec_video",
    "loss_dis",
    "loss_act",
    "loss_align",
    "loss_commit",
)


# --------------------------------------------------------------------------------------------------------------------
# Building blocks


def sinusoidal_embedding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sine/cosine embedding of (possibly fractional) positions `(...,)` → `(..., dim)`."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0)
        * torch.arange(half, device=positions.device, dtype=torch.float32)
        / half
    )
    angles = positions.float().unsqueeze(-1) * freqs
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class HuMoConTransformer(nn.Module):
    """Pre-norm transformer encoder stack (bidirectional) with a final LayerNorm."""

    def __init__(
        self,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        intermediate_size: int,
        dropout: float,
    ):
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            hidden_size,
            num_heads,
            intermediate_size,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerEncoder(
            layer, num_layers, enable_nested_tensor=False
        )
        self.norm = nn.LayerNorm(hidden_size)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        padding = None if mask is None else ~mask.bool()
        return self.norm(self.layers(hidden_states, src_key_padding_mask=padding))

    def forward_with_states(
        self,
        hidden_states: torch.Tensor,
        mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, tuple | None, tuple | None]:
        """
        `(output, all_hidden_states, all_attentions)` (`None` for what was not asked for): `output` is `forward`'s,
        `all_hidden_states` the input of the first layer then each layer's output (before the final LayerNorm),
        `all_attentions` each layer's per-head attention probabilities `(batch, heads, tokens, tokens)`.
        """
        if not (output_hidden_states or output_attentions):
            return self(hidden_states, mask), None, None  # through __call__, as before (hooks)
        padding = None if mask is None else ~mask.bool()
        # Layer by layer, calling each layer exactly as `nn.TransformerEncoder` does (the float key-padding mask it
        # derives from the boolean one, no attention mask, not causal), so the output is bit-identical to the call
        # above. The attention probabilities come from an extra self-attention call on the layer's pre-norm input
        # (dropout off, so no RNG is drawn): they are reported, not used for the output.
        key_padding = None
        if padding is not None:
            key_padding = torch.zeros(
                padding.shape, dtype=hidden_states.dtype, device=padding.device
            ).masked_fill_(padding, float("-inf"))
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers.layers:
            if output_attentions:
                all_attentions += (self._attention_weights(layer, hidden_states, key_padding),)
            hidden_states = layer(
                hidden_states,
                src_mask=None,
                is_causal=False,
                src_key_padding_mask=key_padding,
            )
            if output_hidden_states:
                all_hidden += (hidden_states,)
        return self.norm(hidden_states), all_hidden, all_attentions

    @staticmethod
    def _attention_weights(
        layer: nn.TransformerEncoderLayer,
        hidden_states: torch.Tensor,
        key_padding: torch.Tensor | None,
    ) -> torch.Tensor:
        """Per-head self-attention probabilities of a pre-norm layer for its input `hidden_states`."""
        attn = layer.self_attn
        x = layer.norm1(hidden_states).transpose(0, 1)  # (tokens, batch, hidden): the functional API's layout
        _, weights = F.multi_head_attention_forward(
            x,
            x,
            x,
            attn.embed_dim,
            attn.num_heads,
            attn.in_proj_weight,
            attn.in_proj_bias,
            attn.bias_k,
            attn.bias_v,
            attn.add_zero_attn,
            0.0,
            attn.out_proj.weight,
            attn.out_proj.bias,
            training=False,
            key_padding_mask=key_padding,
            need_weights=True,
            average_attn_weights=False,
        )
        return weights


def _check_finite(name: str, tensor: torch.Tensor) -> None:
    if not torch.isfinite(tensor).all():
        bad = int((~torch.isfinite(tensor)).sum())
        raise ValueError(
            f"{name} contains {bad} NaN/inf values; clean or mask the input before encoding"
        )


def concept_segments(concept_ids) -> list[tuple[int, int, int]]:
    """Contiguous runs of one concept: `[(start, end, concept_id)]`, `end` exclusive, ids `< 0` (padding) skipped."""
    ids = [
        int(i)
        for i in (
            concept_ids.tolist() if hasattr(concept_ids, "tolist") else concept_ids
        )
    ]
    segments: list[tuple[int, int, int]] = []
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or ids[i] != ids[start]:
            if ids[start] >= 0:
                segments.append((start, i, ids[start]))
            start = i
    return segments


class HuMoConEncodersPreTrainedModel(PreTrainedModel):
    """Shared init for the concept encoders and the concept-discovery model."""

    base_model_prefix = "humocon"
    main_input_name = "motion_values"
    supports_gradient_checkpointing = False
    # The SigLIP tower of the video encoder has SDPA; the concept transformers use torch's fused attention either way.
    _supports_sdpa = True
    _no_split_modules: ClassVar[list[str]] = ["TransformerEncoderLayer"]
    # The forward has no **kwargs: the Trainer must not pass `num_items_in_batch`, and it must divide the loss by the
    # accumulation steps itself (DESIGN §3).
    accepts_loss_kwargs = False

    def _init_weights(self, module):
        super()._init_weights(module)
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, HuMoConVectorQuantizer):
            module.reset_parameters()
        elif isinstance(module, HyperNetworkClassifier):
            nn.init.normal_(module.basis, std=module.basis.shape[-1] ** -0.5)
        elif isinstance(module, nn.MultiheadAttention):
            module._reset_parameters()
        for name in ("mask_embedding", "frame_token_embedding"):
            param = getattr(module, name, None)
            if isinstance(param, nn.Parameter):
                nn.init.normal_(param, std=std)

    def _output_flags(
        self, output_hidden_states: bool | None, output_attentions: bool | None
    ) -> tuple[bool, bool]:
        """The `output_hidden_states` / `output_attentions` arguments, defaulting to the config's."""
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        return bool(output_hidden_states), bool(output_attentions)

    def quantizers(self) -> list[HuMoConVectorQuantizer]:
        return [m for m in self.modules() if isinstance(m, HuMoConVectorQuantizer)]

    def set_codebook_update_mode(self, deferred: bool) -> None:
        """`deferred=True`: codebooks change only in `apply_codebook_updates()` (the Trainer calls it once per
        optimiser step, reducing statistics across micro-batches and processes). `False`: after every training
        forward (single process)."""
        for vq in self.quantizers():
            vq.defer_updates = deferred

    @torch.no_grad()
    def apply_codebook_updates(self, sync: bool = True) -> None:
        """Fold recorded VQ statistics into every codebook (a collective call under torch.distributed)."""
        for vq in self.quantizers():
            vq.apply_update(sync=sync)


# --------------------------------------------------------------------------------------------------------------------
# Motion encoder


class HuMoConMotionEncoder(HuMoConEncodersPreTrainedModel):
    """
    Motion concept encoder: `motion_values (B, T, feature_size)` → `ceil(valid_frames / stride)` tokens per clip
    (token `j` covers frames `[j * stride, (j + 1) * stride)`) → 4-layer transformer → VQ codebook.
    """

    config_class = HuMoConMotionEncoderConfig
    config: HuMoConMotionEncoderConfig

    def __init__(self, config: HuMoConMotionEncoderConfig):
        super().__init__(config)
        self.input_proj = nn.Linear(config.feature_size, config.hidden_size)
        self.temporal_downsample = nn.Conv1d(
            config.hidden_size,
            config.hidden_size,
            kernel_size=config.motion_token_stride,
            stride=config.motion_token_stride,
        )
        self.encoder = HuMoConTransformer(
            config.hidden_size,
            config.num_hidden_layers,
            config.num_attention_heads,
            config.intermediate_size,
            config.hidden_dropout,
        )
        self.pre_quant = (
            nn.Identity()
            if config.codebook_dim == config.hidden_size
            else nn.Linear(config.hidden_size, config.codebook_dim)
        )
        self.quantizer = HuMoConVectorQuantizer(
            config.codebook_size,
            config.codebook_dim,
            decay=config.ema_decay,
            dead_code_threshold=config.dead_code_threshold,
            commitment_weight=config.commitment_weight,
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        """The per-frame input projection: the motion counterpart of a token embedding table."""
        return self.input_proj

    def set_input_embeddings(self, value: nn.Module):
        self.input_proj = value

    def num_tokens(self, valid_frames: torch.Tensor) -> torch.Tensor:
        """`ceil(valid_frames / motion_token_stride)`."""
        stride = self.config.motion_token_stride
        return torch.div(valid_frames + stride - 1, stride, rounding_mode="floor")

    def check_inputs(
        self, motion_values: torch.Tensor, motion_attention_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Validate the inputs; returns the boolean frame mask `(B, T)`."""
        if not isinstance(motion_values, torch.Tensor) or motion_values.ndim != 3:
            shape = (
                tuple(motion_values.shape)
                if hasattr(motion_values, "shape")
                else type(motion_values).__name__
            )
            raise ValueError(
                f"motion_values must have shape (batch, frames, {self.config.feature_size}), got {shape}"
            )
        batch, frames, width = motion_values.shape
        if batch == 0 or frames == 0:
            raise ValueError(
                f"motion_values is empty (shape {tuple(motion_values.shape)}); need >= 1 clip and frame"
            )
        if width != self.config.feature_size:
            raise ValueError(
                f"motion_values has {width} features per frame but the encoder expects feature_size="
                f"{self.config.feature_size} (MotionFeatureExtractor output)"
            )
        _check_finite("motion_values", motion_values)
        if motion_attention_mask is None:
            return torch.ones(
                batch, frames, dtype=torch.bool, device=motion_values.device
            )
        if tuple(motion_attention_mask.shape) != (batch, frames):
            raise ValueError(
                f"motion_attention_mask must have shape {(batch, frames)} like motion_values, got "
                f"{tuple(motion_attention_mask.shape)}"
            )
        if motion_attention_mask.dtype != torch.bool and not (
            (motion_attention_mask == 0) | (motion_attention_mask == 1)
        ).all():
            bad = motion_attention_mask[(motion_attention_mask != 0) & (motion_attention_mask != 1)].unique()[:5]
            raise ValueError(f"motion_attention_mask must hold 0 (padding) and 1 (real frame) only, got {bad.tolist()}")
        mask = motion_attention_mask.to(motion_values.device).bool()
        valid = mask.sum(-1)
        if (valid == 0).any():
            raise ValueError(
                f"clip(s) {(valid == 0).nonzero().flatten().tolist()} have no valid frame in motion_attention_mask"
            )
        positions = torch.arange(frames, device=mask.device)
        if not torch.equal(mask, positions[None] < valid[:, None]):
            raise ValueError(
                "motion_attention_mask must be right-padded: ones for the real frames, then zeros"
            )
        return mask

    def forward(
        self,
        motion_values: torch.FloatTensor,
        motion_attention_mask: torch.LongTensor | None = None,
        return_dict: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> HuMoConEncoderOutput | tuple:
        r"""
        Args:
            motion_values (`torch.FloatTensor` of shape `(batch, frames, feature_size)`): normalised pose features.
            motion_attention_mask (`torch.LongTensor` of shape `(batch, frames)`, *optional*): 1 for real frames
                (right padding).
            output_hidden_states (`bool`, *optional*): return the concept transformer's hidden states (defaults to
                `config.output_hidden_states`).
            output_attentions (`bool`, *optional*): return its per-layer attention probabilities (defaults to
                `config.output_attentions`).

        Returns:
            [`HuMoConEncoderOutput`] with `ceil(frames / stride)` tokens; `attention_mask` (long, 0/1) marks the
            `ceil(valid_frames / stride)` valid ones.
        """
        return_dict = (
            return_dict if return_dict is not None else self.config.return_dict
        )
        output_hidden_states, output_attentions = self._output_flags(
            output_hidden_states, output_attentions
        )
        mask = self.check_inputs(motion_values, motion_attention_mask)
        stride = self.config.motion_token_stride
        frames = motion_values.shape[1]
        x = motion_values * mask.unsqueeze(-1).to(motion_values.dtype)
        pad = (-frames) % stride
        hidden = self.input_proj(F.pad(x, (0, 0, 0, pad)))
        hidden = self.temporal_downsample(hidden.transpose(1, 2)).transpose(1, 2)
        num_tokens = hidden.shape[1]
        token_mask = (
            torch.arange(num_tokens, device=hidden.device)[None]
            < self.num_tokens(mask.sum(-1))[:, None]
        )
        positions = torch.arange(num_tokens, device=hidden.device)
        hidden = (
            hidden
            + sinusoidal_embedding(positions, hidden.shape[-1]).to(hidden.dtype)[None]
        )
        hidden, all_hidden, all_attentions = self.encoder.forward_with_states(
            hidden, token_mask, output_hidden_states, output_attentions
        )
        state = self.pre_quant(hidden)
        quantized, ids, commitment = self.quantizer(state, token_mask)
        output = HuMoConEncoderOutput(
            last_hidden_state=hidden,
            quantized=quantized,
            concept_ids=ids,
            attention_mask=token_mask.long(),
            pre_quantized=state,
            commitment_loss=commitment,
            hidden_states=all_hidden,
            attentions=all_attentions,
        )
        return output if return_dict else output.to_tuple()

    @torch.no_grad()
    def get_concepts(
        self,
        motion_values: torch.Tensor,
        motion_attention_mask: torch.Tensor | None = None,
    ) -> list[dict]:
        """
        Concepts of each clip, per frame and as contiguous segments.

        Returns:
            one dict per clip: `frame_concept_ids` (LongTensor `(valid_frames,)`: the id of the token covering each
            frame), `token_concept_ids` (`(tokens,)`) and `segments` (`[(start_frame, end_frame, concept_id)]`,
            end exclusive).
        """
        mask = self.check_inputs(motion_values, motion_attention_mask)
        was_training = self.training
        self.eval()
        try:
            out = self(motion_values, mask.long(), return_dict=True)
        finally:
            self.train(was_training)
        results = []
        for b in range(motion_values.shape[0]):
            n_frames = int(mask[b].sum())
            tokens = out.concept_ids[b][out.attention_mask[b].bool()].cpu()
            per_frame = tokens.repeat_interleave(self.config.motion_token_stride)[
                :n_frames
            ]
            results.append(
                {
                    "frame_concept_ids": per_frame,
                    "token_concept_ids": tokens,
                    "segments": concept_segments(per_frame),
                }
            )
        return results


# --------------------------------------------------------------------------------------------------------------------
# Video encoder


class HuMoConVideoEncoder(HuMoConEncodersPreTrainedModel):
    """
    Video concept encoder: each key frame goes through a SigLIP vision tower (frozen by default); its patch grid is
    average-pooled to `video_tokens_per_frame` tokens; a temporal transformer (time-embedded with the key-frame
    timestamps) produces the per-token state that a VQ codebook quantises.

    Build with pre-trained tower weights through [`HuMoConVideoEncoder.from_vision_tower`] (Hub id or local folder);
    `HuMoConVideoEncoder(config)` starts from a randomly initialised tower.
    """

    config_class = HuMoConVideoEncoderConfig
    config: HuMoConVideoEncoderConfig
    main_input_name = "pixel_values_videos"

    def __init__(self, config: HuMoConVideoEncoderConfig):
        super().__init__(config)
        self.vision_tower = SiglipVisionModel(config.vision_config)
        vision_hidden = config.vision_config.hidden_size
        self.input_proj = nn.Linear(vision_hidden, config.hidden_size)
        self.frame_token_embedding = nn.Parameter(
            torch.zeros(config.video_tokens_per_frame, config.hidden_size)
        )
        self.encoder = HuMoConTransformer(
            config.hidden_size,
            config.num_hidden_layers,
            config.num_attention_heads,
            config.intermediate_size,
            config.hidden_dropout,
        )
        self.pre_quant = (
            nn.Identity()
            if config.codebook_dim == config.hidden_size
            else nn.Linear(config.hidden_size, config.codebook_dim)
        )
        self.quantizer = HuMoConVectorQuantizer(
            config.codebook_size,
            config.codebook_dim,
            decay=config.ema_decay,
            dead_code_threshold=config.dead_code_threshold,
            commitment_weight=config.commitment_weight,
        )
        self.post_init()
        if config.freeze_vision_tower:
            self.vision_tower.requires_grad_(False)

    def get_input_embeddings(self) -> nn.Module:
        """The vision tower's patch embedding."""
        return self.vision_tower.get_input_embeddings()

    @classmethod
    def from_vision_tower(
        cls,
        vision_model_name_or_path: str | None = None,
        config: HuMoConVideoEncoderConfig | None = None,
        **kwargs,
    ) -> "HuMoConVideoEncoder":
        """Encoder whose tower holds pre-trained SigLIP weights loaded with `SiglipVisionModel.from_pretrained`
        (a Hub id such as `google/siglip-base-patch16-224`, or a local folder; full `SiglipModel` checkpoints work).
        The config's `vision_config` is replaced by the loaded tower's. `kwargs` go to `from_pretrained`."""
        config = HuMoConVideoEncoderConfig() if config is None else config
        tower = load_vision_tower(
            vision_model_name_or_path or config.vision_model_name_or_path,
            config,
            **kwargs,
        )
        model = cls(config)
        model.vision_tower.load_state_dict(tower.state_dict())
        if config.freeze_vision_tower:
            model.vision_tower.requires_grad_(False)
        return model

    def train(self, mode: bool = True):
        super().train(mode)
        if self.config.freeze_vision_tower:
            self.vision_tower.eval()
        return self

    @property
    def tower_trainable(self) -> bool:
        return any(p.requires_grad for p in self.vision_tower.parameters())

    def check_inputs(
        self, pixel_values_videos: torch.Tensor, video_timestamps: torch.Tensor | None
    ) -> None:
        size = self.config.vision_config.image_size
        expected = f"(batch, key_frames, 3, {size}, {size})"
        if (
            not isinstance(pixel_values_videos, torch.Tensor)
            or pixel_values_videos.ndim != 5
        ):
            shape = (
                tuple(pixel_values_videos.shape)
                if hasattr(pixel_values_videos, "shape")
                else type(pixel_values_videos).__name__
            )
            raise ValueError(
                f"pixel_values_videos must have shape {expected}, got {shape}"
            )
        batch, frames, channels, height, width = pixel_values_videos.shape
        if batch == 0 or frames == 0:
            raise ValueError(
                f"pixel_values_videos is empty (shape {tuple(pixel_values_videos.shape)}); need >= 1 video and key frame"
            )
        if (
            channels != self.config.vision_config.num_channels
            or height != size
            or width != size
        ):
            raise ValueError(
                f"pixel_values_videos must have shape {expected} for this vision tower, got "
                f"{tuple(pixel_values_videos.shape)} (set the video processor's size to {size})"
            )
        _check_finite("pixel_values_videos", pixel_values_videos)
        if video_timestamps is not None:
            if tuple(video_timestamps.shape) != (batch, frames):
                raise ValueError(
                    f"video_timestamps must have shape {(batch, frames)} (one time per key frame), got "
                    f"{tuple(video_timestamps.shape)}"
                )
            _check_finite("video_timestamps", video_timestamps)

    def encode_frames(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """Tower features pooled to `(batch, key_frames * video_tokens_per_frame, vision_hidden_size)`."""
        batch, frames = pixel_values_videos.shape[:2]
        flat = pixel_values_videos.flatten(0, 1)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.tower_trainable):
            patches = self.vision_tower(pixel_values=flat).last_hidden_state
        grid = self.config.patch_grid_size
        side = round(self.config.video_tokens_per_frame**0.5)
        patches = patches.transpose(1, 2).reshape(flat.shape[0], -1, grid, grid)
        pooled = F.adaptive_avg_pool2d(patches, side).flatten(2).transpose(1, 2)
        return pooled.reshape(batch, frames * side * side, -1)

    def forward(
        self,
        pixel_values_videos: torch.FloatTensor,
        video_timestamps: torch.FloatTensor | None = None,
        return_dict: bool | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
    ) -> HuMoConEncoderOutput | tuple:
        r"""
        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(batch, key_frames, 3, size, size)`): normalised key
                frames from `HuMoConVideoProcessor`.
            video_timestamps (`torch.FloatTensor` of shape `(batch, key_frames)`, *optional*): key-frame times in
                seconds (time embedding); key-frame indices when absent.
            output_hidden_states (`bool`, *optional*): return the temporal transformer's hidden states (not the SigLIP
                tower's; defaults to `config.output_hidden_states`).
            output_attentions (`bool`, *optional*): return its per-layer attention probabilities (defaults to
                `config.output_attentions`).

        Returns:
            [`HuMoConEncoderOutput`] with `key_frames * video_tokens_per_frame` tokens (frame-major) and
            `frame_features` (the pooled tower features). `hidden_states` / `attentions` are those of the temporal
            transformer only; the SigLIP tower's own hidden states and attentions are not returned.
        """
        return_dict = (
            return_dict if return_dict is not None else self.config.return_dict
        )
        output_hidden_states, output_attentions = self._output_flags(
            output_hidden_states, output_attentions
        )
        self.check_inputs(pixel_values_videos, video_timestamps)
        batch, frames = pixel_values_videos.shape[:2]
        per_frame = self.config.video_tokens_per_frame
        frame_features = self.encode_frames(pixel_values_videos)
        hidden = self.input_proj(frame_features)
        if video_timestamps is None:
            times = torch.arange(frames, device=hidden.device, dtype=torch.float32)[
                None
            ].expand(batch, frames)
        else:
            times = (
                video_timestamps.to(hidden.device).float()
                * self.config.time_embedding_scale
            )
        time_embedding = sinusoidal_embedding(
            times, hidden.shape[-1]
        ).repeat_interleave(per_frame, dim=1)
        hidden = (
            hidden
            + time_embedding.to(hidden.dtype)
            + self.frame_token_embedding.repeat(frames, 1)[None]
        )
        hidden, all_hidden, all_attentions = self.encoder.forward_with_states(
            hidden, None, output_hidden_states, output_attentions
        )
        token_mask = torch.ones(
            hidden.shape[:2], dtype=torch.bool, device=hidden.device
        )
        state = self.pre_quant(hidden)
        quantized, ids, commitment = self.quantizer(state, token_mask)
        output = HuMoConEncoderOutput(
            last_hidden_state=hidden,
            quantized=quantized,
            concept_ids=ids,
            attention_mask=token_mask.long(),
            pre_quantized=state,
            commitment_loss=commitment,
            frame_features=frame_features,
            hidden_states=all_hidden,
            attentions=all_attentions,
        )
        return output if return_dict else output.to_tuple()

    @torch.no_grad()
    def get_concepts(
        self,
        pixel_values_videos: torch.Tensor,
        video_timestamps: torch.Tensor | None = None,
    ) -> list[dict]:
        """
        Concepts of each video per key frame (the id of its first token when `video_tokens_per_frame > 1`).

        Returns:
            one dict per video: `frame_concept_ids` (`(key_frames,)`), `token_concept_ids`, `segments`
            (`[(start_key_frame, end_key_frame, concept_id)]`, end exclusive) and `timestamps` (`(key_frames,)`,
            seconds, or `None`).
        """
        was_training = self.training
        self.eval()
        try:
            out = self(pixel_values_videos, video_timestamps, return_dict=True)
        finally:
            self.train(was_training)
        per_frame = self.config.video_tokens_per_frame
        results = []
        for b in range(pixel_values_videos.shape[0]):
            tokens = out.concept_ids[b].cpu()
            frame_ids = tokens[::per_frame]
            results.append(
                {
                    "frame_concept_ids": frame_ids,
                    "token_concept_ids": tokens,
                    "segments": concept_segments(frame_ids),
                    "timestamps": None
                    if video_timestamps is None
                    else video_timestamps[b].detach().cpu(),
                }
            )
        return results


def load_vision_tower(
    vision_model_name_or_path: str | None, config: HuMoConVideoEncoderConfig, **kwargs
):
    """Load a pre-trained SigLIP vision tower and write its config into `config.vision_config`."""
    if not vision_model_name_or_path:
        raise ValueError(
            "no vision tower to load: pass vision_model_name_or_path (e.g. 'google/siglip-base-patch16-224' or a "
            "local folder saved with save_pretrained) or set it in HuMoConVideoEncoderConfig"
        )
    tower = SiglipVisionModel.from_pretrained(vision_model_name_or_path, **kwargs)
    config.vision_config = tower.config
    config.vision_model_name_or_path = str(vision_model_name_or_path)
    config.check_token_grid()  # the loaded tower may have a smaller patch grid
    return tower


# --------------------------------------------------------------------------------------------------------------------
# Heads of the concept-discovery objectives


class HyperNetworkClassifier(nn.Module):
    """
    Hyper-network H (discriminative informativeness): from a code vector `c_k` a 2-layer generator MLP produces
    `rank` coefficients that mix as many learned basis matrices into the weights of a `(C, C + 1)` layer — the
    concept's own classifier. A state `s` is embedded (`act(W_s s)`, the classifier's first layer), passed through the
    generated layer, and scored `sigmoid(cos(μ_k, h) / τ)` with `μ_k` a linear map of the code (InfoCon reference).
    """

    def __init__(
        self,
        code_dim: int,
        state_dim: int,
        classifier_dim: int,
        hidden_size: int,
        rank: int,
        temperature: float,
    ):
        super().__init__()
        self.temperature = temperature
        self.generator = nn.Sequential(
            nn.Linear(code_dim, hidden_size), nn.GELU(), nn.Linear(hidden_size, rank)
        )
        self.basis = nn.Parameter(
            torch.randn(rank, classifier_dim, classifier_dim + 1)
            / math.sqrt(classifier_dim + 1)
        )
        self.state_embed = nn.Linear(state_dim, classifier_dim)
        self.code_direction = nn.Linear(code_dim, classifier_dim)

    def logits(
        self,
        codebook: torch.Tensor,
        states: torch.Tensor,
        code_ids: torch.LongTensor | None = None,
    ) -> torch.Tensor:
        """
        Args:
            codebook (`(K, code_dim)`): code vectors.
            states (`(N, state_dim)`): states to score.
            code_ids (`(N, M)`, *optional*): which codes to score for each state; `None` scores all `K` codes
                (without gathering per-pair copies of the generated weights).

        Returns:
            `(N, M)` (or `(N, K)`) logits `cos(μ_k, h_k(s)) / τ`; the score is their sigmoid.
        """
        coeffs = self.generator(codebook)  # (K, r)
        directions = self.code_direction(codebook)  # (K, C)
        x = F.gelu(self.state_embed(states))
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=-1)  # (N, C + 1)
        basis_out = torch.einsum(
            "rcd,nd->nrc", self.basis, x
        )  # (N, r, C): the state through each basis matrix
        if code_ids is None:
            # h_k = Σ_r a_kr B_r x is never materialised for all K codes: with rank r, μ_k·h_k = Σ_r a_kr (μ_k·B_r x)
            # and |h_k|² = a_k^T G a_k with the (r, r) Gram matrix G of the B_r x — O(N K r²) instead of O(N K C).
            dots = torch.einsum("nrc,kc->nkr", basis_out, directions)
            numerator = (dots * coeffs[None]).sum(-1)  # (N, K)
            gram = torch.einsum("nrc,nsc->nrs", basis_out, basis_out)
            hidden_sq = torch.einsum("kr,nrs,ks->nk", coeffs, gram, coeffs)
            direction_norm = directions.norm(dim=-1)[None]  # (1, K)
        else:
            hidden = torch.einsum(
                "nmr,nrc->nmc", coeffs[code_ids], basis_out
            )  # (N, M, C)
            picked = directions[code_ids]
            numerator = (hidden * picked).sum(-1)
            hidden_sq = hidden.pow(2).sum(-1)
            direction_norm = picked.norm(dim=-1)
        norm = hidden_sq.clamp_min(1e-12).sqrt() * direction_norm
        return numerator / norm.clamp_min(1e-6) / self.temperature


class VelocityDecoder(nn.Module):
    """Velocity decoder A (actionable informativeness): 2-layer MLP on `[state, ∂score/∂state]`."""

    def __init__(self, state_dim: int, hidden_size: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * state_dim, hidden_size),
            nn.GELU(),
            nn.Linear(hidden_size, out_dim),
        )

    def forward(self, state: torch.Tensor, score_grad: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([state, score_grad], dim=-1))


class ReconstructionDecoder(nn.Module):
    """Transformer decoder of the masked-reconstruction objective: (masked) quantised tokens → targets."""

    def __init__(
        self,
        code_dim: int,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        out_dim: int,
    ):
        super().__init__()
        self.mask_embedding = nn.Parameter(torch.zeros(code_dim))
        self.input_proj = nn.Linear(code_dim, hidden_size)
        self.transformer = HuMoConTransformer(
            hidden_size, num_layers, num_heads, 4 * hidden_size, 0.0
        )
        self.output_proj = nn.Linear(hidden_size, out_dim)

    def forward(
        self,
        quantized: torch.Tensor,
        token_mask: torch.Tensor,
        masked: torch.Tensor | None,
    ) -> torch.Tensor:
        if masked is not None:
            quantized = torch.where(
                masked.unsqueeze(-1), self.mask_embedding.to(quantized.dtype), quantized
            )
        hidden = self.input_proj(quantized)
        positions = torch.arange(hidden.shape[1], device=hidden.device)
        hidden = (
            hidden
            + sinusoidal_embedding(positions, hidden.shape[-1]).to(hidden.dtype)[None]
        )
        return self.output_proj(self.transformer(hidden, token_mask))


def random_token_mask(
    token_mask: torch.Tensor, ratio: float, generator: torch.Generator | None = None
) -> torch.Tensor | None:
    """Choose `round(ratio * valid_tokens)` random valid tokens per row to mask (torch's global RNG, or
    `generator`)."""
    if ratio <= 0:
        return None
    noise = torch.rand(token_mask.shape, device=token_mask.device, generator=generator)
    noise = noise.masked_fill(~token_mask, 2.0)
    ranks = noise.argsort(-1).argsort(-1)
    n_mask = torch.round(token_mask.sum(-1).float() * ratio).long()
    return ranks < n_mask[:, None]


# --------------------------------------------------------------------------------------------------------------------
# Concept discovery (stage-1 pre-training)


class HuMoConForConceptDiscovery(HuMoConEncodersPreTrainedModel):
    """
    Stage 1 of HuMoCon: the motion and video concept encoders trained with the four objectives of the paper.

    - Masked reconstruction: a fraction σ of valid quantised tokens (random, in training and evaluation alike) is
      replaced by a learned mask embedding; the motion
      decoder (2 layers) reconstructs the input frames (each token is unfolded back into its `stride` frames), the
      video decoder (12 layers) reconstructs the pooled tower features of each token. MSE over valid frames/tokens.
    - Discriminative informativeness: [`HyperNetworkClassifier`] scores (code, state) pairs; BCE with label
      `[VQ assignment == code]`. All codes are scored (`dis_num_negatives=None`) or the own code plus sampled
      negatives; positives and negatives are averaged separately and summed, so the 1:K imbalance does not make the
      all-negative answer optimal.
    - Actionable informativeness: `g = ∂ Σ_l score(c_{d_l}, s_l) / ∂ s` with `create_graph=True`; the velocity
      decoder maps `[s, g]` to the velocity: for motion, the mean feature vector of token `j + 1` minus that of token
      `j` (the last valid token has no target); for video, the optical flow from key frame `i` to `i + 1`
      (`video_flow`, average-pooled to `flow_grid_size²` cells, times `flow_scale`). Runs under `torch.enable_grad()`
      so the loss can be evaluated in `no_grad` evaluation loops too.
    - Alignment: one linear projection per modality; for each paired video key frame `i`, InfoNCE (temperature ε)
      against all valid motion tokens of its paired motion, positive `floor(t_i * motion_fps / stride)`.

    The state `s` of both informativeness objectives is the encoder's pre-quantisation feature.
    """

    config_class = HuMoConConceptDiscoveryConfig
    config: HuMoConConceptDiscoveryConfig
    main_input_name = "motion_values"

    def __init__(self, config: HuMoConConceptDiscoveryConfig):
        super().__init__(config)
        mc, vc = config.motion_config, config.video_config
        self.motion_encoder = HuMoConMotionEncoder(mc)
        self.video_encoder = HuMoConVideoEncoder(vc)
        self.motion_decoder = ReconstructionDecoder(
            mc.codebook_dim,
            mc.decoder_hidden_size,
            mc.decoder_num_layers,
            mc.decoder_num_attention_heads,
            mc.motion_token_stride * mc.feature_size,
        )
        self.video_decoder = ReconstructionDecoder(
            vc.codebook_dim,
            vc.decoder_hidden_size,
            vc.decoder_num_layers,
            vc.decoder_num_attention_heads,
            vc.vision_config.hidden_size,
        )
        hyper = (
            config.classifier_dim,
            config.hyper_hidden_size,
            config.hyper_rank,
            config.score_temperature,
        )
        self.motion_hyper_network = HyperNetworkClassifier(
            mc.codebook_dim, mc.codebook_dim, *hyper
        )
        self.video_hyper_network = HyperNetworkClassifier(
            vc.codebook_dim, vc.codebook_dim, *hyper
        )
        self.motion_velocity_decoder = VelocityDecoder(
            mc.codebook_dim, config.velocity_hidden_size, mc.feature_size
        )
        self.video_velocity_decoder = VelocityDecoder(
            vc.codebook_dim, config.velocity_hidden_size, 2 * vc.flow_grid_size**2
        )
        self.motion_alignment_projector = nn.Linear(
            mc.codebook_dim, config.alignment_dim
        )
        self.video_alignment_projector = nn.Linear(
            vc.codebook_dim, config.alignment_dim
        )
        self.post_init()
        if vc.freeze_vision_tower:
            self.video_encoder.vision_tower.requires_grad_(False)
        # Codebooks change at the end of each training forward (the heads read the codebook during the forward),
        # or once per optimiser step when a Trainer defers them.
        self.set_codebook_update_mode(deferred=False)

    @classmethod
    def from_vision_tower(
        cls,
        vision_model_name_or_path: str | None = None,
        config: HuMoConConceptDiscoveryConfig | None = None,
        **kwargs,
    ) -> "HuMoConForConceptDiscovery":
        """Model whose video tower holds pre-trained SigLIP weights (Hub id or local folder); see
        [`HuMoConVideoEncoder.from_vision_tower`]."""
        config = HuMoConConceptDiscoveryConfig() if config is None else config
        vc = config.video_config
        tower = load_vision_tower(
            vision_model_name_or_path or vc.vision_model_name_or_path, vc, **kwargs
        )
        model = cls(config)
        model.video_encoder.vision_tower.load_state_dict(tower.state_dict())
        if vc.freeze_vision_tower:
            model.video_encoder.vision_tower.requires_grad_(False)
        return model

    def set_codebook_update_mode(self, deferred: bool) -> None:
        """`deferred=True`: only `apply_codebook_updates()` changes the codebooks (the Trainer calls it once per
        optimiser step, on every process). `False` (default): at the end of every training forward, locally."""
        super().set_codebook_update_mode(
            True
        )  # the encoders never update mid-forward: the heads read the codebook
        self._update_in_forward = not deferred

    # ---- input handling ----------------------------------------------------------------------------------------

    def get_input_embeddings(self) -> nn.Module:
        """The motion encoder's input projection (what `enable_input_require_grads` and PEFT hook)."""
        return self.motion_encoder.get_input_embeddings()

    @staticmethod
    def _pairs(
        paired, n_motion: int | None, n_video: int | None, device
    ) -> torch.LongTensor | None:
        """Normalise `paired` to a `(P, 2)` tensor of (motion row, video row) indices, or None."""
        if paired is None:
            if n_motion is None or n_video is None:
                return None
            if n_motion != n_video:
                raise ValueError(
                    f"motion batch ({n_motion}) and video batch ({n_video}) differ in size and `paired` is not given: "
                    "pass paired=(P, 2) index pairs (motion row, video row) or a boolean mask for equal batches"
                )
            rows = torch.arange(n_motion, device=device)
            return torch.stack([rows, rows], -1)
        if n_motion is None or n_video is None:
            raise ValueError(
                "`paired` was given but only one modality was; paired samples need motion and video"
            )
        paired = torch.as_tensor(paired, device=device)
        if paired.dtype == torch.bool or paired.ndim == 1:
            if n_motion != n_video:
                raise ValueError(
                    f"a per-row `paired` mask needs equal motion ({n_motion}) and video ({n_video}) batch sizes"
                )
            if tuple(paired.shape) != (n_motion,):
                raise ValueError(
                    f"`paired` mask must have shape ({n_motion},), got {tuple(paired.shape)}"
                )
            rows = paired.bool().nonzero().flatten()
            return torch.stack([rows, rows], -1)
        if paired.ndim != 2 or paired.shape[1] != 2:
            raise ValueError(
                f"`paired` must be a (batch,) bool mask or (P, 2) index pairs, got {tuple(paired.shape)}"
            )
        paired = paired.long()
        if paired.numel() and (
            paired.min() < 0
            or paired[:, 0].max() >= n_motion
            or paired[:, 1].max() >= n_video
        ):
            raise ValueError(
                f"`paired` indices out of range for {n_motion} motion and {n_video} video samples: {paired.tolist()}"
            )
        return paired

    # ---- objectives --------------------------------------------------------------------------------------------

    def _discriminative_and_actionable(
        self,
        hyper: HyperNetworkClassifier,
        velocity_decoder: VelocityDecoder,
        codebook: torch.Tensor,
        states: torch.Tensor,
        ids: torch.LongTensor,
        velocity_target: torch.Tensor | None,
        velocity_mask: torch.Tensor | None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Both informativeness losses over valid states `(N, D)` with VQ ids `(N,)`."""
        loss_dis = loss_act = None
        n_codes = codebook.shape[0]
        if self.config.use_discriminative:
            negatives = self.config.dis_num_negatives
            if negatives is None or negatives >= n_codes - 1:
                logits = hyper.logits(codebook, states)
                labels = F.one_hot(ids, n_codes).to(logits.dtype)
            else:
                # Own code first, then `negatives` distinct other codes (offsets avoid the own id).
                offsets = (
                    torch.rand(
                        states.shape[0], n_codes - 1, device=states.device, generator=generator
                    ).argsort(-1)[:, :negatives]
                    + 1
                )
                code_ids = torch.cat(
                    [ids[:, None], (ids[:, None] + offsets) % n_codes], dim=1
                )
                logits = hyper.logits(codebook, states, code_ids)
                labels = (code_ids == ids[:, None]).to(logits.dtype)
            bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
            pos = labels.sum().clamp_min(1.0)
            neg = (1 - labels).sum().clamp_min(1.0)
            loss_dis = (bce * labels).sum() / pos + (bce * (1 - labels)).sum() / neg
        if self.config.use_actionable and velocity_target is not None:
            with torch.enable_grad():
                state = (
                    states
                    if states.requires_grad
                    else states.detach().requires_grad_(True)
                )
                own_score = torch.sigmoid(
                    hyper.logits(codebook, state, ids[:, None])
                ).sum()
                (score_grad,) = torch.autograd.grad(own_score, state, create_graph=True)
                prediction = velocity_decoder(state, score_grad)
                err = (
                    (prediction - velocity_target.to(prediction.dtype)).pow(2).mean(-1)
                )
                weight = velocity_mask.to(err.dtype)
                loss_act = (err * weight).sum() / weight.sum().clamp_min(1.0)
        return loss_dis, loss_act

    def _motion_velocity_target(self, motion_values, frame_mask, num_tokens):
        """Mean features per token; target of token j is mean(j + 1) - mean(j), valid when token j + 1 is."""
        stride = self.config.motion_config.motion_token_stride
        batch, frames, width = motion_values.shape
        pad = num_tokens * stride - frames
        x = F.pad(
            motion_values * frame_mask.unsqueeze(-1).to(motion_values.dtype),
            (0, 0, 0, pad),
        )
        m = F.pad(frame_mask.to(motion_values.dtype), (0, pad))
        sums = x.view(batch, num_tokens, stride, width).sum(2)
        counts = m.view(batch, num_tokens, stride).sum(2).clamp_min(1.0)
        means = sums / counts.unsqueeze(-1)
        target = torch.zeros_like(means)
        target[:, :-1] = means[:, 1:] - means[:, :-1]
        token_valid = m.view(batch, num_tokens, stride).sum(2) > 0
        valid = torch.zeros_like(token_valid)
        valid[:, :-1] = token_valid[:, 1:]
        return target, valid

    def _video_velocity_target(self, video_flow, batch, frames):
        vc = self.config.video_config
        if video_flow.ndim != 5 or tuple(video_flow.shape[:3]) != (
            batch,
            frames - 1,
            2,
        ):
            raise ValueError(
                f"video_flow must have shape ({batch}, {frames - 1}, 2, grid, grid) (flow between consecutive key "
                f"frames), got {tuple(video_flow.shape)}"
            )
        _check_finite("video_flow", video_flow)
        per_frame = vc.video_tokens_per_frame
        pooled = F.adaptive_avg_pool2d(
            video_flow.flatten(0, 1).float(), vc.flow_grid_size
        )
        pooled = pooled.reshape(batch, frames - 1, -1) * vc.flow_scale
        target = F.pad(pooled, (0, 0, 0, 1)).repeat_interleave(per_frame, dim=1)
        valid = torch.ones(batch, frames, dtype=torch.bool, device=video_flow.device)
        valid[:, -1] = False
        return target, valid.repeat_interleave(per_frame, dim=1)

    def _alignment(
        self, motion_out, video_out, video_timestamps, pairs, n_video_frames
    ):
        mc = self.config.motion_config
        per_frame = self.config.video_config.video_tokens_per_frame
        m_idx, v_idx = pairs[:, 0], pairs[:, 1]
        motion = F.normalize(
            self.motion_alignment_projector(motion_out.quantized[m_idx]), dim=-1
        )  # (P, Tm, A)
        video = self.video_alignment_projector(
            video_out.quantized[v_idx]
        )  # (P, K * per, A)
        video = F.normalize(
            video.view(video.shape[0], n_video_frames, per_frame, -1).mean(2), dim=-1
        )  # (P, K, A)
        token_mask = motion_out.attention_mask[m_idx].bool()
        n_tokens = token_mask.sum(-1)
        if video_timestamps is None:
            raise ValueError(
                "video_timestamps are needed to align paired videos with their motions"
            )
        times = video_timestamps[v_idx].to(motion.device).float()
        if (times < 0).any():
            raise ValueError("video_timestamps must be >= 0 seconds")
        target = torch.floor(
            times * self.config.motion_fps / mc.motion_token_stride + 1e-4
        ).long()
        late = target >= n_tokens[:, None]
        if late.any():
            p = int(late.any(-1).nonzero()[0])
            raise ValueError(
                f"paired video {int(v_idx[p])} has a key frame at {float(times[p].max()):.3f}s but its motion "
                f"{int(m_idx[p])} lasts only {int(n_tokens[p]) * mc.motion_token_stride / self.config.motion_fps:.3f}s "
                "(mismatched pair lengths)"
            )
        logits = (
            torch.einsum("pka,pta->pkt", video, motion)
            / self.config.alignment_temperature
        )
        logits = logits.masked_fill(
            ~token_mask[:, None, :], torch.finfo(logits.dtype).min
        )
        return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten())

    # ---- forward -------------------------------------------------------------------------------------------------

    def forward(
        self,
        motion_values: torch.FloatTensor | None = None,
        motion_attention_mask: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        video_timestamps: torch.FloatTensor | None = None,
        video_flow: torch.FloatTensor | None = None,
        paired: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> ConceptDiscoveryOutput | tuple:
        r"""
        Args:
            motion_values (`torch.FloatTensor` of shape `(batch_motion, frames, feature_size)`, *optional*).
            motion_attention_mask (`torch.LongTensor` of shape `(batch_motion, frames)`, *optional*).
            pixel_values_videos (`torch.FloatTensor` of shape `(batch_video, key_frames, 3, size, size)`, *optional*).
            video_timestamps (`torch.FloatTensor` of shape `(batch_video, key_frames)`, *optional*): seconds; needed
                for alignment.
            video_flow (`torch.FloatTensor` of shape `(batch_video, key_frames - 1, 2, g, g)`, *optional*): optical
                flow between consecutive key frames (target of the video velocity decoder; without it the video part
                of the actionable objective is skipped).
            paired (*optional*): which motion and video rows are frame-aligned pairs: a `(P, 2)` LongTensor of
                (motion row, video row), or a `(batch,)` bool mask when both batches have the same size. When both
                modalities are given with equal batch sizes and `paired` is `None`, every row is a pair.

        Returns:
            [`ConceptDiscoveryOutput`].
        """
        return_dict = (
            return_dict if return_dict is not None else self.config.return_dict
        )
        if motion_values is None and pixel_values_videos is None:
            raise ValueError(
                "HuMoConForConceptDiscovery needs motion_values and/or pixel_values_videos; got neither"
            )
        if motion_values is None and motion_attention_mask is not None:
            raise ValueError("motion_attention_mask was given without motion_values")
        if pixel_values_videos is None and (
            video_flow is not None or video_timestamps is not None
        ):
            raise ValueError(
                "video_flow / video_timestamps were given without pixel_values_videos"
            )
        cfg = self.config
        n_motion = None if motion_values is None else motion_values.shape[0]
        n_video = None if pixel_values_videos is None else pixel_values_videos.shape[0]
        device = (
            motion_values if motion_values is not None else pixel_values_videos
        ).device
        pairs = (
            self._pairs(paired, n_motion, n_video, device)
            if cfg.use_alignment
            else None
        )
        # Training draws masks and negatives from torch's RNG; evaluation from a fixed seed, so that two identical
        # eval calls (and eval losses across runs) agree.
        generator = None if self.training else torch.Generator(device=device).manual_seed(0)

        losses: dict[str, torch.Tensor | None] = dict.fromkeys(LOSS_COMPONENTS)
        dis_terms, act_terms, commit_terms = [], [], []
        motion_out = video_out = None

        if motion_values is not None:
            mc = cfg.motion_config
            motion_out = self.motion_encoder(
                motion_values,
                motion_attention_mask,
                return_dict=True,
                output_hidden_states=False,
                output_attentions=False,
            )
            frame_mask = self.motion_encoder.check_inputs(
                motion_values, motion_attention_mask
            )
            token_mask = motion_out.attention_mask.bool()
            num_tokens = token_mask.shape[1]
            commit_terms.append(motion_out.commitment_loss)
            if cfg.use_masked_reconstruction:
                masked = random_token_mask(token_mask, mc.mask_ratio, generator)
                recon = self.motion_decoder(motion_out.quantized, token_mask, masked)
                recon = recon.reshape(
                    n_motion, num_tokens * mc.motion_token_stride, mc.feature_size
                )
                recon = recon[:, : motion_values.shape[1]]
                weight = frame_mask.unsqueeze(-1).to(recon.dtype)
                losses["loss_rec_motion"] = (
                    (recon - motion_values.to(recon.dtype)).pow(2) * weight
                ).sum() / (weight.sum() * mc.feature_size)
            if cfg.use_discriminative or cfg.use_actionable:
                target, target_valid = self._motion_velocity_target(
                    motion_values, frame_mask, num_tokens
                )
                dis, act = self._discriminative_and_actionable(
                    self.motion_hyper_network,
                    self.motion_velocity_decoder,
                    self.motion_encoder.quantizer.embed.detach().clone(),
                    motion_out.pre_quantized[token_mask],
                    motion_out.concept_ids[token_mask],
                    target[token_mask],
                    target_valid[token_mask],
                    generator,
                )
                dis_terms.append(dis)
                act_terms.append(act)

        if pixel_values_videos is not None:
            vc = cfg.video_config
            video_out = self.video_encoder(
                pixel_values_videos,
                video_timestamps,
                return_dict=True,
                output_hidden_states=False,
                output_attentions=False,
            )
            n_frames = pixel_values_videos.shape[1]
            token_mask = video_out.attention_mask.bool()
            commit_terms.append(video_out.commitment_loss)
            if cfg.use_masked_reconstruction:
                masked = random_token_mask(token_mask, vc.mask_ratio, generator)
                recon = self.video_decoder(video_out.quantized, token_mask, masked)
                losses["loss_rec_video"] = F.mse_loss(
                    recon, video_out.frame_features.detach().to(recon.dtype)
                )
            if cfg.use_discriminative or cfg.use_actionable:
                target = valid = None
                if video_flow is not None and n_frames > 1:
                    target, valid = self._video_velocity_target(
                        video_flow.to(device), n_video, n_frames
                    )
                    target, valid = target.flatten(0, 1), valid.flatten()
                dis, act = self._discriminative_and_actionable(
                    self.video_hyper_network,
                    self.video_velocity_decoder,
                    self.video_encoder.quantizer.embed.detach().clone(),
                    video_out.pre_quantized.flatten(0, 1),
                    video_out.concept_ids.flatten(),
                    target,
                    valid,
                    generator,
                )
                dis_terms.append(dis)
                act_terms.append(act)

        if pairs is not None and pairs.shape[0] > 0:
            losses["loss_align"] = self._alignment(
                motion_out, video_out, video_timestamps, pairs, n_frames
            )

        def total(terms):
            terms = [t for t in terms if t is not None]
            return torch.stack(terms).sum() if terms else None

        losses["loss_dis"] = total(dis_terms)
        losses["loss_act"] = total(act_terms)
        losses["loss_commit"] = total(commit_terms)
        loss = losses["loss_commit"]
        for name, weight in (
            ("loss_rec_motion", 1.0),
            ("loss_rec_video", 1.0),
            ("loss_dis", cfg.lambda_dis),
            ("loss_act", cfg.lambda_act),
            ("loss_align", cfg.lambda_align),
        ):
            if losses[name] is not None:
                loss = loss + weight * losses[name]

        if self.training and self._update_in_forward:
            self.apply_codebook_updates(sync=False)

        output = ConceptDiscoveryOutput(
            loss=loss,
            **losses,
            motion_concept_ids=None if motion_out is None else motion_out.concept_ids,
            video_concept_ids=None if video_out is None else video_out.concept_ids,
            motion_token_mask=None if motion_out is None else motion_out.attention_mask,
        )
        return output if return_dict else output.to_tuple()

    @torch.no_grad()
    def get_concepts(
        self,
        motion_values: torch.Tensor | None = None,
        motion_attention_mask: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        video_timestamps: torch.Tensor | None = None,
    ) -> dict[str, list[dict]]:
        """Per-frame concept ids and segments (see the encoders' `get_concepts`), under keys `motion` / `video`."""
        if motion_values is None and pixel_values_videos is None:
            raise ValueError(
                "get_concepts needs motion_values and/or pixel_values_videos"
            )
        result = {}
        if motion_values is not None:
            result["motion"] = self.motion_encoder.get_concepts(
                motion_values, motion_attention_mask
            )
        if pixel_values_videos is not None:
            result["video"] = self.video_encoder.get_concepts(
                pixel_values_videos, video_timestamps
            )
        return result


__all__ = [
    "ConceptDiscoveryOutput",
    "HuMoConEncoderOutput",
    "HuMoConForConceptDiscovery",
    "HuMoConMotionEncoder",
    "HuMoConVideoEncoder",
    "concept_segments",
]
