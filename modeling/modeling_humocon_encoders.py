"""HuMoCon's concept encoders: what turns a motion or a video into a short sequence of concepts.

- [`HuMoConMotionEncoder`]: per-frame pose features → strided temporal tokens → transformer → VQ concepts.
- [`HuMoConVideoEncoder`]: SigLIP vision tower over key frames → pooled frame tokens → temporal adapter → VQ concepts.

Their stage-1 training model, with the heads of the four objectives, is [`HuMoConForConceptDiscovery`] in
`modeling_humocon_concept_discovery.py`.

One file (over 600 lines) on purpose: transformers' convention is one self-contained modeling file per model
(this one pairs with `configuration_humocon_encoders.py`), and it is what `trust_remote_code` copies to the Hub;
the two encoders share the transformer, the pretrained base class and the output class defined here.

Remote-code rule: this file imports only external libraries and same-folder modules (`from .x import Y`).
"""

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, SiglipVisionModel
from transformers import initialization as hf_init
from transformers.utils import ModelOutput

from .configuration_humocon_encoders import (
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
        # Layer by layer, with the float key-padding mask `nn.TransformerEncoder` derives from the boolean one. Only
        # hidden states asked for: each layer is called exactly as the encoder calls it, so the output is bit-identical
        # to `forward`. Attentions asked for: each layer runs its explicit (eager) attention, whose probabilities are
        # the ones its output is computed from (gradients reach them, as transformers' eager attention); the output
        # equals `forward`'s to float rounding.
        key_padding = None
        if padding is not None:
            key_padding = torch.zeros(
                padding.shape, dtype=hidden_states.dtype, device=padding.device
            ).masked_fill_(padding, float("-inf"))
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers.layers:
            if output_attentions:
                hidden_states, weights = self._eager_layer(layer, hidden_states, key_padding)
                all_attentions += (weights,)
            else:
                hidden_states = layer(hidden_states, src_mask=None, is_causal=False, src_key_padding_mask=key_padding)
            if output_hidden_states:
                all_hidden += (hidden_states,)
        return self.norm(hidden_states), all_hidden, all_attentions

    @staticmethod
    def _eager_layer(
        layer: nn.TransformerEncoderLayer,
        hidden_states: torch.Tensor,
        key_padding: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One pre-norm encoder layer with explicit attention: `(output, per-head attention probabilities)`, the
        probabilities being the very tensor the values are weighted with (as transformers' eager attention)."""
        attn = layer.self_attn
        batch, tokens, width = hidden_states.shape
        heads = attn.num_heads
        x = layer.norm1(hidden_states)
        qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).view(batch, tokens, 3, heads, width // heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (batch, heads, tokens, head_dim) each
        scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(width // heads)
        if key_padding is not None:
            scores = scores + key_padding[:, None, None, :]
        weights = F.dropout(torch.softmax(scores, dim=-1), p=attn.dropout, training=layer.training)
        attended = torch.matmul(weights, value).transpose(1, 2).reshape(batch, tokens, width)
        hidden_states = hidden_states + layer.dropout1(attn.out_proj(attended))
        x = layer.norm2(hidden_states)
        feed_forward = layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))
        return hidden_states + layer.dropout2(feed_forward), weights


def _check_finite(name: str, tensor: torch.Tensor) -> None:
    if not torch.isfinite(tensor).all():
        bad = int((~torch.isfinite(tensor)).sum())
        raise ValueError(
            f"{name} contains {bad} NaN/inf values; clean or mask the input before encoding"
        )


@torch.no_grad()
def initialize_weights_by_submodel(model: PreTrainedModel) -> None:
    """`PreTrainedModel.initialize_weights` in which each sub-model says for itself whether it is custom code.

    transformers walks the whole module tree with the top model's `is_custom_code()` and, for custom code, skips every
    module without parameters of its own (its guard against remote `_init_weights` that overwrite loaded weights in
    place). With a custom top model that flag also reaches the transformers models inside it (the SigLIP tower, the
    LLM), whose `_init_weights` initialise their weights from such parameter-less parents (SigLIP's attention and MLP
    blocks): built without weights they were initialised differently from a stand-alone `SiglipVisionModel`. Here a
    transformers sub-model is walked as transformers walks it on its own; our own modules still get the custom-code
    rule, which is why our `_init_weights` initialise the leaf modules themselves (a projector's `nn.Linear`), never
    through a parameter-less parent. Only transformers' guarded init functions write (loaded weights are kept)."""

    def visit(module: nn.Module, owner: PreTrainedModel, is_custom_code: bool) -> None:
        for child in module.children():
            if isinstance(child, PreTrainedModel):
                visit(child, child, child.is_custom_code())
            else:
                visit(child, owner, is_custom_code)
        owner._initialize_weights(module, is_custom_code)

    with hf_init.guard_torch_init_functions():
        visit(model, model, model.is_custom_code())


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

    def initialize_weights(self):
        initialize_weights_by_submodel(self)

    @torch.no_grad()
    def _init_weights(self, module):
        # Called on every module, leaves included (nn.Linear, LayerNorm, nn.MultiheadAttention... through
        # PreTrainedModel's own `_init_weights`); transformers' guarded init functions only, so the tensors that a
        # checkpoint loaded keep their values.
        super()._init_weights(module)
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, HuMoConVectorQuantizer):
            # `reset_parameters()` tensor by tensor: a checkpoint missing one buffer keeps the loaded codebook.
            hf_init.copy_(module.embed, module.initial_codebook().to(module.embed.device, module.embed.dtype))
            for buffer in (module.cluster_size, module.embed_sum, module.initialized, module.num_updates):
                hf_init.zeros_(buffer)
            module._pending = []
        elif isinstance(module, nn.MultiheadAttention):
            # Again after PreTrainedModel's own reset: a second draw, kept so that seeded models (and the recipes'
            # measured results) stay the same as before.
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

    @staticmethod
    def _keep_requested_layers(all_hidden: tuple | None, requested) -> tuple | None:
        """`output_hidden_states` given as indices (transformers' selective capture, negative ones from the end):
        the states of the other positions are None."""
        if all_hidden is None or not isinstance(requested, (list, tuple)):
            return all_hidden
        keep = {int(i) % len(all_hidden) for i in requested}
        return tuple(h if i in keep else None for i, h in enumerate(all_hidden))

    def _init_concept_layers(self, config) -> None:
        """What both encoders put after their token embedding: the transformer, the projection into the codebook's
        space and the VQ codebook (the concepts)."""
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

    def _encode_tokens(
        self,
        hidden: torch.Tensor,
        token_mask: torch.Tensor | None,
        output_hidden_states: bool,
        output_attentions: bool,
        requested_layers,
        return_dict: bool,
        **extra,
    ) -> HuMoConEncoderOutput | tuple:
        """The transformer over the embedded tokens `(batch, tokens, hidden)` (`token_mask` `(batch, tokens)`, None:
        all valid), then the codebook: the output of both encoders (`extra`: fields only one of them fills)."""
        hidden, all_hidden, all_attentions = self.encoder.forward_with_states(
            hidden, token_mask, output_hidden_states, output_attentions
        )
        if token_mask is None:
            token_mask = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
        state = self.pre_quant(hidden)
        quantized, ids, commitment = self.quantizer(state, token_mask)
        output = HuMoConEncoderOutput(
            last_hidden_state=hidden,
            quantized=quantized,
            concept_ids=ids,
            attention_mask=token_mask.long(),
            pre_quantized=state,
            commitment_loss=commitment,
            hidden_states=self._keep_requested_layers(all_hidden, requested_layers),
            attentions=all_attentions,
            **extra,
        )
        return output if return_dict else output.to_tuple()

    def _forward_in_eval_mode(self, *inputs) -> HuMoConEncoderOutput:
        """`forward` with dropout off (eval mode), the module's mode put back after: what `get_concepts` reads."""
        was_training = self.training
        self.eval()
        try:
            return self(*inputs, return_dict=True)
        finally:
            self.train(was_training)

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
        self._init_concept_layers(config)
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
            output_hidden_states (`bool` or `list[int]`, *optional*): return the concept transformer's hidden states
                (defaults to `config.output_hidden_states`); a list of indices keeps only those (the rest are None).
            output_attentions (`bool`, *optional*): return its per-layer attention probabilities (defaults to
                `config.output_attentions`).

        Returns:
            [`HuMoConEncoderOutput`] with `ceil(frames / stride)` tokens; `attention_mask` (long, 0/1) marks the
            `ceil(valid_frames / stride)` valid ones.
        """
        return_dict = (
            return_dict if return_dict is not None else self.config.return_dict
        )
        requested_layers = output_hidden_states
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
        return self._encode_tokens(
            hidden, token_mask, output_hidden_states, output_attentions, requested_layers, return_dict
        )

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
        out = self._forward_in_eval_mode(motion_values, mask.long())
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
        self._init_concept_layers(config)
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
            output_hidden_states (`bool` or `list[int]`, *optional*): return the temporal transformer's hidden states
                (not the SigLIP tower's; defaults to `config.output_hidden_states`); a list of indices keeps only those.
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
        requested_layers = output_hidden_states
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
        return self._encode_tokens(
            hidden, None, output_hidden_states, output_attentions, requested_layers, return_dict,
            frame_features=frame_features,
        )

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
        out = self._forward_in_eval_mode(pixel_values_videos, video_timestamps)
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


__all__ = [
    "HuMoConEncoderOutput",
    "HuMoConEncodersPreTrainedModel",
    "HuMoConMotionEncoder",
    "HuMoConVideoEncoder",
    "concept_segments",
    "initialize_weights_by_submodel",
    "load_vision_tower",
]
