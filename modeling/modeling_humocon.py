"""HuMoCon question-answering model: a causal LLM reading motion and video through frozen concept encoders.

The encoders turn a motion clip (or a video) into a short sequence of concept features; one projector per
modality maps them into the LLM's embedding space, where they replace the `<motion>` / `<video>`
placeholder tokens that the processor expanded to the right counts.

One file (over 600 lines) on purpose: transformers' convention is one self-contained modeling file per model,
and it is what `trust_remote_code` copies to the Hub with a checkpoint; the output classes, projector, base model
and causal-LM head here are what one `AutoModel` checkpoint loads.

Remote-code rule: this file imports only external libraries and same-folder modules (`from .x import Y`).
"""

import copy
import re
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from transformers import AutoModel, GenerationMixin, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache
from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.core_model_loading import WeightRenaming
from transformers.modeling_outputs import BaseModelOutputWithPast, BaseModelOutputWithPooling
from transformers.modeling_utils import slice_logits_to_keep
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs, logging
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple

from .configuration_humocon import HuMoConConfig
from .modeling_humocon_encoders import HuMoConMotionEncoder, HuMoConVideoEncoder, initialize_weights_by_submodel

logger = logging.get_logger(__name__)

# Checkpoints keep the layout they had before the transformers-5 multimodal layout (as LLaVA's do): one causal LM
# under `language_model` and the encoders / projectors at the top. Loading renames them onto `HuMoConModel` (under
# `model`) with the LM head on `HuMoConForCausalLM`; saving renames them back, so checkpoints written by this and by
# earlier versions load in both. (Written for LLMs whose causal LM keeps its decoder under `model`, as Llama, Qwen,
# Mistral and SmolLM do.)
_LEGACY_TO_CURRENT_KEYS = (  # (pattern on a checkpoint key, its name in the module tree)
    (r"^language_model\.lm_head", "lm_head"),
    (r"^language_model\.model", "model.language_model"),
    (r"^motion_encoder", "model.motion_encoder"),
    (r"^video_encoder", "model.video_encoder"),
    (r"^motion_projector", "model.motion_projector"),
    (r"^video_projector", "model.video_projector"),
)
register_checkpoint_conversion_mapping(
    "HuMoConForCausalLM",
    [WeightRenaming(source_patterns=src, target_patterns=dst) for src, dst in _LEGACY_TO_CURRENT_KEYS],
    overwrite=True,
)


def checkpoint_key_to_module_key(key: str) -> str:
    """The `HuMoConForCausalLM.state_dict()` name of a weight stored under `key` in a checkpoint file (the layout
    `save_pretrained` writes); keys already in the module layout are returned unchanged."""
    for pattern, replacement in _LEGACY_TO_CURRENT_KEYS:
        renamed, count = re.subn(pattern, replacement, key)
        if count:
            return renamed
    return key

# Inputs only needed to fill placeholder embeddings: once the prompt sits in the KV cache they are dead weight.
MODALITY_INPUT_NAMES = (
    "motion_values",
    "motion_attention_mask",
    "pixel_values_videos",
    "video_timestamps",
    "video_flow",
)


@dataclass
class HuMoConModalityOutput(BaseModelOutputWithPooling):
    r"""
    Output of [`HuMoConModel.get_motion_features`] / [`HuMoConModel.get_video_features`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(num_items, num_tokens, encoder_width)`):
            The encoder features handed to the projector (the quantised concept vectors when
            `config.use_motion_quantized` / `use_video_quantized`, else the continuous features).
        pooler_output (`torch.FloatTensor` of shape `(num_items, num_tokens, hidden_size)`):
            The projected features, in the LLM's embedding space (what replaces the placeholder tokens).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): the encoder's per-layer hidden states, with
            `output_hidden_states=True`.
        attentions (`tuple(torch.FloatTensor)`, *optional*): the encoder's attention weights, with
            `output_attentions=True`.
        attention_mask (`torch.LongTensor` of shape `(num_items, num_tokens)`): 1 for the tokens of real frames
            (`ceil(valid_frames / stride)` per motion clip).
        concept_ids (`torch.LongTensor` of shape `(num_items, num_tokens)`, *optional*): concept (codebook) id of
            every token.
    """

    attention_mask: torch.LongTensor | None = None
    concept_ids: torch.LongTensor | None = None


@dataclass
class HuMoConModelOutputWithPast(BaseModelOutputWithPast):
    r"""
    Output of [`HuMoConModel`]: the language model's last hidden states, cache, per-layer states and attentions, and
    the modality features that were merged into the prompt.

    Args:
        motion_hidden_states (`torch.FloatTensor` of shape `(num_motion_tokens, hidden_size)`, *optional*):
            Projected motion features that replaced the `<motion>` tokens (all clips concatenated).
        video_hidden_states (`torch.FloatTensor` of shape `(num_video_tokens, hidden_size)`, *optional*):
            Projected video features that replaced the `<video>` tokens.
        motion_concept_ids (`torch.LongTensor` of shape `(num_motion_clips, num_tokens)`, *optional*).
        video_concept_ids (`torch.LongTensor` of shape `(num_videos, num_tokens)`, *optional*).
    """

    motion_hidden_states: torch.FloatTensor | None = None
    video_hidden_states: torch.FloatTensor | None = None
    motion_concept_ids: torch.LongTensor | None = None
    video_concept_ids: torch.LongTensor | None = None


@dataclass
class HuMoConCausalLMOutputWithPast(ModelOutput):
    r"""
    Output of [`HuMoConForCausalLM`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Next-token cross-entropy over the unmasked `labels` (answers only, by the processor's convention).
        logits (`torch.FloatTensor` of shape `(batch_size, sequence_length, vocab_size)`):
            LLM prediction scores.
        cache (`Cache`, *optional*):
            KV cache of the LLM, reused by `generate`.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            LLM hidden states per layer, each `(batch_size, sequence_length, hidden_size)`.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            LLM attention weights per layer.
        motion_hidden_states (`torch.FloatTensor` of shape `(num_motion_tokens, hidden_size)`, *optional*):
            Projected motion features that replaced the `<motion>` tokens (all clips concatenated).
        video_hidden_states (`torch.FloatTensor` of shape `(num_video_tokens, hidden_size)`, *optional*):
            Projected video features that replaced the `<video>` tokens.
        motion_concept_ids (`torch.LongTensor` of shape `(num_motion_clips, num_tokens)`, *optional*):
            Concept (codebook) id of every motion token, as given by the motion encoder.
        video_concept_ids (`torch.LongTensor` of shape `(num_videos, num_tokens)`, *optional*):
            Concept id of every video token.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cache: Cache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    motion_hidden_states: torch.FloatTensor | None = None
    video_hidden_states: torch.FloatTensor | None = None
    motion_concept_ids: torch.LongTensor | None = None
    video_concept_ids: torch.LongTensor | None = None


def _encoder_feature_size(encoder_config, quantized: bool) -> int:
    """Width of the features an encoder hands to the projector (codebook width when quantised, if it differs)."""
    if quantized:
        for name in ("codebook_dim", "code_dim", "embedding_dim"):
            value = getattr(encoder_config, name, None)
            if isinstance(value, int) and value > 0:
                return value
    for name in ("hidden_size", "d_model"):
        value = getattr(encoder_config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    raise ValueError(
        f"cannot tell the feature width of {type(encoder_config).__name__}: it has no hidden_size"
    )


class HuMoConModalityProjector(nn.Module):
    """Two-layer MLP (LLaVA-1.5 style) mapping encoder features into the LLM embedding space."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_act: str = "gelu",
        bias: bool = True,
    ):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, out_features, bias=bias)
        self.act = ACT2FN[hidden_act]
        self.linear_2 = nn.Linear(out_features, out_features, bias=bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """`features` (..., in_features) -> (..., out_features)."""
        return self.linear_2(self.act(self.linear_1(features)))


class HuMoConPreTrainedModel(PreTrainedModel):
    """Shared settings: attention backends and checkpointing are those of the wrapped LLM; the projectors get a
    small normal init (the LLM and the encoders initialise themselves)."""

    config: HuMoConConfig
    config_class = HuMoConConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    input_modalities = ("text", "video")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    # A decode step without media has no data-dependent Python value (tests/test_compile.py); a step with media
    # (the prompt) checks placeholder counts in Python and runs eagerly, as generate's prefill does.
    _can_compile_fullgraph = True
    _no_split_modules: ClassVar[list[str]] = ["HuMoConModalityProjector"]
    _skip_keys_device_placement: ClassVar[list[str]] = ["cache", "past_key_values"]

    def initialize_weights(self):
        # The LLM and the SigLIP tower inside are walked as transformers walks them on their own (see
        # `initialize_weights_by_submodel`).
        initialize_weights_by_submodel(self)

    @torch.no_grad()
    def _init_weights(self, module):
        """Called by transformers on every module outside the sub-models (the LLM and the encoders initialise their
        own), leaves included: as custom code, a module without parameters of its own (the projector) is skipped, so
        its `nn.Linear` layers are initialised here as leaves: normal(0, `initializer_range`) weights, zero biases.
        Only transformers' guarded init functions write, so weights loaded from a checkpoint are kept."""
        if module is getattr(self, "lm_head", None):  # as the LLM's own head would be initialised
            std = getattr(self.config.text_config, "initializer_range", self.config.initializer_range)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        else:
            super()._init_weights(module)  # nn.Linear, nn.Embedding, LayerNorm...: normal(initializer_range) / zeros

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # Loading swaps in fresh Parameters (requires_grad=True) after __init__ froze the encoders: freeze again.
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True: (model, info)
        if model.config.freeze_encoders:
            model.freeze_encoders()
        model._suppress_placeholders()  # checkpoints saved before placeholders were suppressed
        return loaded

    def _suppress_placeholders(self):
        """`<motion>` / `<video>` are input-only: a generated placeholder has no media to fill it (and would make a
        cache-less step find more placeholders than features), so generation never samples them."""
        if getattr(self, "generation_config", None) is None:
            return
        ids = [t for t in (self.config.motion_token_id, self.config.video_token_id) if t is not None]
        if not ids:
            return
        current = list(self.generation_config.suppress_tokens or [])
        self.generation_config.suppress_tokens = current + [t for t in ids if t not in current]


class HuMoConModel(HuMoConPreTrainedModel):
    """
    The HuMoCon base model: the motion and video concept encoders, one projector per modality and the language
    model's decoder (`language_model`, without its LM head). It merges the projected features at the `<motion>` /
    `<video>` placeholders and returns the decoder's hidden states. The encoders are frozen; the projectors are the
    new weights of stage 2 (modality translation).
    """

    def __init__(self, config: HuMoConConfig):
        super().__init__(config)
        self.language_model = AutoModel.from_config(config.text_config)
        # Keep one config object so resizing the vocabulary updates what `save_pretrained` writes.
        self.config.text_config = self.language_model.config
        self.motion_encoder = HuMoConMotionEncoder(config.motion_config)
        self.video_encoder = HuMoConVideoEncoder(config.video_config)
        text_hidden = config.text_config.hidden_size
        motion_features = _encoder_feature_size(config.motion_config, config.use_motion_quantized)
        if config.motion_projector_reads_poses:
            motion_features += config.motion_token_stride * config.motion_config.feature_size
        self.motion_projector = HuMoConModalityProjector(
            motion_features,
            text_hidden,
            config.projector_hidden_act,
            config.projector_bias,
        )
        self.video_projector = HuMoConModalityProjector(
            _encoder_feature_size(config.video_config, config.use_video_quantized),
            text_hidden,
            config.projector_hidden_act,
            config.projector_bias,
        )
        self.post_init()
        if config.freeze_encoders:
            self.freeze_encoders()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        self.language_model.set_input_embeddings(value)

    # ----------------------------------------------------------------------------------------------------
    # Freezing helpers used by the stage-2 / stage-3 trainers.
    def freeze_encoders(self):
        """Stop gradients to both concept encoders and keep them in eval mode (VQ codebooks never update)."""
        for encoder in (self.motion_encoder, self.video_encoder):
            encoder.requires_grad_(False)
            encoder.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        # Frozen encoders must not switch to training behaviour (dropout, EMA codebook updates).
        if self.config.freeze_encoders:
            self.motion_encoder.eval()
            self.video_encoder.eval()
        return self

    def projector_parameters(self):
        """Parameters trained in stage 2 (modality translation)."""
        return list(self.motion_projector.parameters()) + list(self.video_projector.parameters())

    # ----------------------------------------------------------------------------------------------------
    # Modality features.
    @staticmethod
    def _encoder_grad_enabled(encoder: nn.Module) -> bool:
        return torch.is_grad_enabled() and any(p.requires_grad for p in encoder.parameters())

    def _encode(
        self,
        encoder: nn.Module,
        projector: HuMoConModalityProjector,
        quantized: bool,
        encoder_inputs: dict,
        output_hidden_states: bool | None,
        output_attentions: bool | None,
        return_dict: bool | None,
        projector_extra_inputs: torch.Tensor | None = None,
    ) -> HuMoConModalityOutput | tuple:
        """Run one frozen (or trainable) concept encoder and its projector; `projector_extra_inputs`
        `(batch, num_tokens, width)` are concatenated to the encoder's features before the projector."""
        flags = {
            name: value
            for name, value in (("output_hidden_states", output_hidden_states), ("output_attentions", output_attentions))
            if value is not None
        }
        with torch.set_grad_enabled(self._encoder_grad_enabled(encoder)):
            outputs = encoder(**encoder_inputs, return_dict=True, **flags)
        features = outputs.quantized if quantized else outputs.last_hidden_state
        token_mask = getattr(outputs, "attention_mask", None)
        if token_mask is None:
            token_mask = torch.ones(features.shape[:2], dtype=torch.long, device=features.device)
        projector_inputs = features
        if projector_extra_inputs is not None:
            projector_inputs = torch.cat([features, projector_extra_inputs.to(features.dtype)], dim=-1)
        result = HuMoConModalityOutput(
            last_hidden_state=features,
            pooler_output=projector(projector_inputs.to(projector.linear_1.weight.dtype)),
            hidden_states=getattr(outputs, "hidden_states", None),
            attentions=getattr(outputs, "attentions", None),
            attention_mask=token_mask.long(),
            concept_ids=getattr(outputs, "concept_ids", None),
        )
        use_dict = return_dict if return_dict is not None else self.config.return_dict
        return result if use_dict else result.to_tuple()

    def get_motion_features(
        self,
        motion_values: torch.Tensor,
        motion_attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> HuMoConModalityOutput | tuple:
        """
        Encode and project motion clips.

        Args:
            motion_values (`torch.FloatTensor` of shape `(num_clips, num_frames, feature_size)`): normalised
                per-frame pose features from the processor.
            motion_attention_mask (`torch.LongTensor` of shape `(num_clips, num_frames)`, *optional*): 1 for
                real frames.

        Returns:
            [`HuMoConModalityOutput`]: the projected features `(num_clips, num_tokens, hidden_size)` in
            `pooler_output`, the encoder features in `last_hidden_state`, the token mask in `attention_mask`
            (`ceil(valid_frames / stride)` ones per clip) and the concept ids.
        """
        if motion_values.ndim != 3:
            raise ValueError(
                f"motion_values must have shape (num_clips, num_frames, feature_size), got {tuple(motion_values.shape)}"
            )
        inputs = {
            "motion_values": motion_values.to(self.motion_encoder.dtype),
            "motion_attention_mask": motion_attention_mask,
        }
        poses = self._pose_patches(motion_values, motion_attention_mask) if self.config.motion_projector_reads_poses else None
        return self._encode(
            self.motion_encoder, self.motion_projector, self.config.use_motion_quantized, inputs,
            output_hidden_states, output_attentions, return_dict, projector_extra_inputs=poses,
        )

    def _pose_patches(self, motion_values: torch.Tensor, motion_attention_mask: torch.Tensor | None) -> torch.Tensor:
        """`(clips, frames, features)` -> `(clips, ceil(frames / stride), stride * features)`: the frames each motion
        token covers, side by side (padding and masked frames are zeros), for `motion_projector_reads_poses`."""
        clips, frames, width = motion_values.shape
        stride = self.config.motion_token_stride
        values = motion_values
        if motion_attention_mask is not None:
            values = values * motion_attention_mask[..., None].to(values.dtype)
        values = nn.functional.pad(values, (0, 0, 0, (-frames) % stride))
        return values.reshape(clips, -1, stride * width)

    def get_video_features(
        self,
        pixel_values_videos: torch.Tensor,
        video_timestamps: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
    ) -> HuMoConModalityOutput | tuple:
        """
        Encode and project videos.

        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(num_videos, num_key_frames, 3, size, size)`).
            video_timestamps (`torch.FloatTensor` of shape `(num_videos, num_key_frames)`, *optional*): key-frame
                times in seconds; the video encoder embeds them (key-frame indices when absent).

        Returns:
            [`HuMoConModalityOutput`] with `num_key_frames * video_tokens_per_frame` tokens per video.
        """
        if pixel_values_videos.ndim != 5:
            raise ValueError(
                "pixel_values_videos must have shape (num_videos, num_key_frames, 3, size, size), got "
                f"{tuple(pixel_values_videos.shape)}"
            )
        inputs = {
            "pixel_values_videos": pixel_values_videos.to(self.video_encoder.dtype),
            "video_timestamps": video_timestamps,
        }
        return self._encode(
            self.video_encoder, self.video_projector, self.config.use_video_quantized, inputs,
            output_hidden_states, output_attentions, return_dict,
        )

    def get_placeholder_mask(
        self,
        input_ids: torch.LongTensor | None,
        inputs_embeds: torch.Tensor,
        token_id: int,
    ) -> torch.BoolTensor:
        """(batch, seq) mask of the placeholder `token_id`, from `input_ids` or, without them, by comparing
        `inputs_embeds` with the placeholder's own embedding."""
        if input_ids is not None:
            return input_ids == token_id
        placeholder = self.get_input_embeddings()(
            torch.tensor(token_id, device=inputs_embeds.device)
        )
        return (inputs_embeds == placeholder.to(inputs_embeds.dtype)).all(-1)

    def _warn_unfilled_placeholders(
        self, input_ids: torch.LongTensor | None, inputs_embeds: torch.Tensor, token_id: int, name: str, source: str
    ) -> None:
        """As LLaVA does: without media a placeholder is an ordinary token; say so once."""
        n_tokens = int(self.get_placeholder_mask(input_ids, inputs_embeds, token_id).sum())
        if n_tokens:
            where = "input_ids" if input_ids is not None else "inputs_embeds"
            logger.warning_once(
                f"{n_tokens} <{name}> tokens in {where} but no {source} were given: they are read as text. Pass "
                f"the processor's {source} with the text for the model to see the {name}."
            )

    def _merge(
        self,
        input_ids: torch.LongTensor | None,
        inputs_embeds: torch.Tensor,
        features: torch.Tensor,
        token_mask: torch.Tensor,
        token_id: int | None,
        name: str,
        source: str,
    ) -> torch.Tensor:
        """Write `features` (valid tokens only, clip after clip) into the placeholder positions."""
        if token_id is None:
            raise ValueError(
                f"{source} were given but config.{name}_token_id is not set; build the model with "
                "HuMoConForCausalLM.from_parts(...) or set the placeholder token id in the config"
            )
        mask = self.get_placeholder_mask(input_ids, inputs_embeds, token_id)
        n_tokens = int(mask.sum())
        flat = features[token_mask.bool()]
        if n_tokens != flat.shape[0]:
            where = "input_ids" if input_ids is not None else "inputs_embeds"
            raise ValueError(
                f"{n_tokens} <{name}> tokens in {where} but the {name} encoder produced {flat.shape[0]} features; "
                f"the processor must expand each <{name}> placeholder to the encoder's token count"
            )
        mask3 = mask.unsqueeze(-1).expand_as(inputs_embeds)
        return inputs_embeds.masked_scatter(
            mask3, flat.to(inputs_embeds.device, inputs_embeds.dtype)
        )

    # ----------------------------------------------------------------------------------------------------
    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        motion_values: torch.FloatTensor | None = None,
        motion_attention_mask: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        video_timestamps: torch.FloatTensor | None = None,
        video_flow: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple | HuMoConModelOutputWithPast:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                Token ids with `<motion>` / `<video>` placeholders already expanded by the processor.
            motion_values (`torch.FloatTensor` of shape `(num_clips, num_frames, feature_size)`, *optional*):
                One row per motion clip in the batch, in the order their placeholders appear (row-major).
            motion_attention_mask (`torch.LongTensor` of shape `(num_clips, num_frames)`, *optional*).
            pixel_values_videos (`torch.FloatTensor` of shape `(num_videos, num_key_frames, 3, size, size)`, *optional*).
            video_timestamps (`torch.FloatTensor` of shape `(num_videos, num_key_frames)`, *optional*): key-frame
                times, embedded by the video encoder.
            video_flow: accepted so processor outputs can be passed as `**inputs`; unused here (it is the stage-1
                velocity target).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        merged = {}
        for name, values, extra, source in (
            ("motion", motion_values, motion_attention_mask, "motion_values"),
            ("video", pixel_values_videos, video_timestamps, "pixel_values_videos"),
        ):
            token_id = getattr(self.config, f"{name}_token_id")
            merged[name] = None
            if values is None:
                # Decided from the inputs given, never from the token values: a decode step (no media) holds no
                # data-dependent Python value, so it compiles with `fullgraph=True`. Only a prompt (more than one
                # position) is checked for placeholders left without media; a generated token is never one.
                if token_id is not None and inputs_embeds.shape[1] > 1 and not torch.compiler.is_compiling():
                    self._warn_unfilled_placeholders(input_ids, inputs_embeds, token_id, name, source)
                continue
            get_features = self.get_motion_features if name == "motion" else self.get_video_features
            features = get_features(values, extra, return_dict=True)
            inputs_embeds = self._merge(
                input_ids, inputs_embeds, features.pooler_output, features.attention_mask, token_id, name, source
            )
            merged[name] = features

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            return_dict=True,
            **kwargs,
        )
        motion, video = merged["motion"], merged["video"]
        return HuMoConModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            motion_hidden_states=None if motion is None else motion.pooler_output[motion.attention_mask.bool()],
            video_hidden_states=None if video is None else video.pooler_output[video.attention_mask.bool()],
            motion_concept_ids=None if motion is None else motion.concept_ids,
            video_concept_ids=None if video is None else video.concept_ids,
        )


class HuMoConForCausalLM(HuMoConPreTrainedModel, GenerationMixin):
    """
    HuMoCon: an LLM that answers questions about a motion, a video, both or neither. [`HuMoConModel`] (`model`)
    holds the frozen motion and video concept encoders, the projectors and the LLM's decoder; the LM head is here.
    Stage 2 (modality translation) trains the projectors; stage 3 adds LoRA adapters to the LLM.
    """

    # Tensor parallelism: the LLM's decoder brings its own plan (`model.language_model.*`, embeddings included); the
    # head, tied to the embeddings, must be sharded with them (as in Llama and LLaVA).
    _tp_plan: ClassVar[dict[str, str]] = {"lm_head": "colwise_gather_output"}

    def __init__(self, config: HuMoConConfig):
        super().__init__(config)
        self.model = HuMoConModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self._tie_to_language_model_embeddings()
        self.post_init()
        self._suppress_placeholders()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """`nn.Module.load_state_dict` that also takes a checkpoint file's state dict as `save_pretrained` writes it
        (the legacy key layout, see `_LEGACY_TO_CURRENT_KEYS`). `Trainer` resumes a full-model checkpoint with
        `model.load_state_dict(load_file(...), strict=False)`: without the renaming no key matched, nothing was
        loaded and a resumed stage 2 silently restarted from the initial projector weights."""
        renamed = {checkpoint_key_to_module_key(key): value for key, value in state_dict.items()}
        if len(renamed) != len(state_dict):
            raise ValueError("the state dict holds the same weight under both the checkpoint and the module name")
        return super().load_state_dict(renamed, strict=strict, assign=assign)

    def _tie_to_language_model_embeddings(self):
        """Name the LLM's input embedding as the LM head's tied twin (`_tied_weights_keys`), whatever the LLM calls
        it; tying itself happens only when `config.tie_word_embeddings` (mirrored from the LLM's config)."""
        embeddings = self.model.language_model.get_input_embeddings()
        name = next(
            (n for n, m in self.model.language_model.named_modules() if m is embeddings), "embed_tokens"
        )
        self._tied_weights_keys = {"lm_head.weight": f"model.language_model.{name}.weight"}

    # ----------------------------------------------------------------------------------------------------
    # The parts, under the names the pipeline and users know them by.
    @property
    def language_model(self) -> PreTrainedModel:
        """The LLM's decoder (without the LM head, which is `lm_head`)."""
        return self.model.language_model

    @property
    def motion_encoder(self) -> HuMoConMotionEncoder:
        return self.model.motion_encoder

    @property
    def video_encoder(self) -> HuMoConVideoEncoder:
        return self.model.video_encoder

    @property
    def motion_projector(self) -> HuMoConModalityProjector:
        return self.model.motion_projector

    @property
    def video_projector(self) -> HuMoConModalityProjector:
        return self.model.video_projector

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Module):
        self.lm_head = new_embeddings

    def get_decoder(self):
        return self.model.language_model

    def set_decoder(self, decoder):
        self.model.language_model = decoder

    def freeze_encoders(self):
        self.model.freeze_encoders()

    def projector_parameters(self):
        return self.model.projector_parameters()

    def get_motion_features(self, motion_values, motion_attention_mask=None, **kwargs) -> HuMoConModalityOutput:
        return self.model.get_motion_features(motion_values, motion_attention_mask, **kwargs)

    def get_video_features(self, pixel_values_videos, video_timestamps=None, **kwargs) -> HuMoConModalityOutput:
        return self.model.get_video_features(pixel_values_videos, video_timestamps, **kwargs)

    def get_placeholder_mask(self, input_ids, inputs_embeds, token_id) -> torch.BoolTensor:
        return self.model.get_placeholder_mask(input_ids, inputs_embeds, token_id)

    # ----------------------------------------------------------------------------------------------------
    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        motion_values: torch.FloatTensor | None = None,
        motion_attention_mask: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        video_timestamps: torch.FloatTensor | None = None,
        video_flow: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple | HuMoConCausalLMOutputWithPast:
        r"""
        Args:
            input_ids, motion_values, motion_attention_mask, pixel_values_videos, video_timestamps, video_flow:
                as in [`HuMoConModel.forward`].
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Targets for the next-token loss; -100 is ignored. Shifted inside the loss. With gradient
                accumulation, Trainer passes `num_items_in_batch`, which is forwarded to the loss so the loss is
                normalised once over the whole accumulated batch.
            logits_to_keep (`int` or `torch.Tensor`, defaults to 0): compute logits only for the last `n` positions
                (0: all), or for the given indices.
        """
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            motion_values=motion_values,
            motion_attention_mask=motion_attention_mask,
            pixel_values_videos=pixel_values_videos,
            video_timestamps=video_timestamps,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)
        logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size, **kwargs
            )
        return HuMoConCausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            motion_hidden_states=outputs.motion_hidden_states,
            video_hidden_states=outputs.video_hidden_states,
            motion_concept_ids=outputs.motion_concept_ids,
            video_concept_ids=outputs.video_concept_ids,
        )

    def prepare_inputs_for_generation(
        self, input_ids, cache=None, inputs_embeds=None, is_first_iteration=False, **kwargs
    ):
        """Send the modality inputs only with the prompt: afterwards their features already live in the cache.
        Without a cache every step re-reads the full prompt, so they are kept. `inputs_embeds` (declared so that
        `generate(inputs_embeds=...)` is allowed) replace the prompt's token embeddings on the first step."""
        modality_inputs = {
            name: kwargs.pop(name, None) for name in MODALITY_INPUT_NAMES
        }
        model_inputs = super().prepare_inputs_for_generation(
            input_ids, cache=cache, inputs_embeds=inputs_embeds, is_first_iteration=is_first_iteration, **kwargs
        )
        if is_first_iteration or not kwargs.get("use_cache", True):
            model_inputs.update(
                {k: v for k, v in modality_inputs.items() if v is not None}
            )
        return model_inputs

    def _expand_inputs_for_generation(
        self, expand_size: int = 1, is_encoder_decoder: bool = False, input_ids=None, **model_kwargs
    ):
        """Beam search and `num_return_sequences` copy each row `expand_size` times. The media inputs hold one entry
        per clip / video, not per row, so GenerationMixin's `repeat_interleave` would give [c0, c0, c1, c1] where a
        row with two clips needs [c0, c1, c0, c1]: here each row's items are repeated as a group."""
        groups = {}
        if expand_size > 1:
            inputs_embeds = model_kwargs.get("inputs_embeds")
            for name, keys in (
                ("motion", ("motion_values", "motion_attention_mask")),
                ("video", ("pixel_values_videos", "video_timestamps", "video_flow")),
            ):
                values = model_kwargs.get(keys[0])
                if not isinstance(values, torch.Tensor):
                    continue
                index = self._media_index_by_row(name, values, model_kwargs, input_ids, inputs_embeds, expand_size)
                for key in keys:
                    tensor = model_kwargs.get(key)
                    if isinstance(tensor, torch.Tensor) and tensor.ndim and tensor.shape[0] == values.shape[0]:
                        groups[key] = tensor.index_select(0, index.to(tensor.device))
                        model_kwargs.pop(key)
        input_ids, model_kwargs = super()._expand_inputs_for_generation(
            expand_size=expand_size, is_encoder_decoder=is_encoder_decoder, input_ids=input_ids, **model_kwargs
        )
        model_kwargs.update(groups)
        return input_ids, model_kwargs

    def _media_index_by_row(self, name, values, model_kwargs, input_ids, inputs_embeds, expand_size):
        """Indices into the `name` items (clips or videos) that give every row's items, row by row, each row's group
        `expand_size` times. Items are assigned to rows in order by their placeholder counts."""
        token_id = getattr(self.config, f"{name}_token_id")
        if token_id is None:
            raise ValueError(f"{name} inputs were given but config.{name}_token_id is not set")
        if input_ids is not None and input_ids.numel():
            per_row = (input_ids == token_id).sum(-1)
        elif inputs_embeds is not None:
            per_row = self.get_placeholder_mask(None, inputs_embeds, token_id).sum(-1)
        else:
            raise ValueError(f"{name} inputs need input_ids or inputs_embeds holding their placeholders")
        if name == "motion":
            mask = model_kwargs.get("motion_attention_mask")
            frames = (
                mask.long().sum(-1) if isinstance(mask, torch.Tensor)
                else torch.full((values.shape[0],), values.shape[1], dtype=torch.long)
            )
            stride = self.config.motion_token_stride
            per_item = torch.div(frames + stride - 1, stride, rounding_mode="floor")
        else:
            per_item = torch.full((values.shape[0],), values.shape[1] * self.config.video_tokens_per_frame)
        per_item = per_item.tolist()
        index, item = [], 0
        for row, needed in enumerate(per_row.tolist()):
            start, filled = item, 0
            while filled < needed and item < len(per_item):
                filled += per_item[item]
                item += 1
            if filled != needed:
                raise ValueError(
                    f"row {row} holds {needed} <{name}> placeholder tokens but its {name} items (taken in order) give "
                    f"{filled}: each row's placeholders must match its own {name} inputs"
                )
            index += list(range(start, item)) * expand_size
        if item != len(per_item):
            raise ValueError(
                f"{len(per_item)} {name} items were given but the prompts' <{name}> placeholders account for {item}"
            )
        return torch.tensor(index, dtype=torch.long)

    # ----------------------------------------------------------------------------------------------------
    @classmethod
    def from_parts(
        cls,
        language_model: PreTrainedModel,
        motion_encoder: PreTrainedModel,
        video_encoder: PreTrainedModel,
        processor_or_token_ids,
        **config_kwargs,
    ) -> "HuMoConForCausalLM":
        """
        Assemble one checkpoint from a causal LLM, trained encoders and fresh projectors.

        Args:
            language_model: any `AutoModelForCausalLM` model (e.g. SmolLM2-135M-Instruct).
            motion_encoder / video_encoder: trained `HuMoConMotionEncoder` / `HuMoConVideoEncoder`.
            processor_or_token_ids: a `MotionVideoProcessor` (its tokenizer already holds `<motion>` / `<video>`)
                or a dict `{"motion_token_id": int, "video_token_id": int, "vocab_size": int (optional)}`.
                The LLM's embeddings are resized to cover the new token ids (new rows take the mean
                embedding, so they do not skew the output distribution before training).
            config_kwargs: extra `HuMoConConfig` fields (projector activation, quantised-feature switches...).
        """
        if isinstance(processor_or_token_ids, dict):
            motion_token_id = processor_or_token_ids["motion_token_id"]
            video_token_id = processor_or_token_ids["video_token_id"]
            vocab_size = processor_or_token_ids.get("vocab_size")
        else:
            processor = processor_or_token_ids
            motion_token_id = processor.motion_token_id
            video_token_id = processor.video_token_id
            vocab_size = len(processor.tokenizer)
        if motion_token_id is None or video_token_id is None:
            raise ValueError(
                "processor_or_token_ids must give both motion_token_id and video_token_id"
            )
        needed = max(int(motion_token_id), int(video_token_id)) + 1
        vocab_size = max(needed, int(vocab_size or 0))

        if vocab_size > language_model.get_input_embeddings().weight.shape[0]:
            language_model.resize_token_embeddings(vocab_size, mean_resizing=True)

        motion_stride = getattr(motion_encoder.config, "motion_token_stride", None)
        video_tpf = getattr(video_encoder.config, "video_tokens_per_frame", None)
        if not isinstance(processor_or_token_ids, dict):
            for name, encoder_value in (
                ("motion_token_stride", motion_stride),
                ("video_tokens_per_frame", video_tpf),
            ):
                processor_value = getattr(processor_or_token_ids, name, None)
                if (
                    None not in (processor_value, encoder_value)
                    and processor_value != encoder_value
                ):
                    raise ValueError(
                        f"processor.{name}={processor_value} but the encoder uses {encoder_value}: the processor "
                        "would expand placeholders to a different token count than the encoder produces"
                    )
        if motion_stride is not None:
            config_kwargs.setdefault("motion_token_stride", motion_stride)
        if video_tpf is not None:
            config_kwargs.setdefault("video_tokens_per_frame", video_tpf)
        config = HuMoConConfig(
            # A copy: building the skeleton resolves its text config's attention kernel to the default, which must
            # not reach the LLM (loaded e.g. with `attn_implementation="eager"`); the LLM's own config replaces it.
            text_config=copy.deepcopy(language_model.config),
            motion_config=motion_encoder.config,
            video_config=video_encoder.config,
            motion_token_id=int(motion_token_id),
            video_token_id=int(video_token_id),
            **config_kwargs,
        )
        # Build on the meta device, then hand over the real modules: no second copy of the LLM in memory. The causal
        # LM is split into its decoder (`model.language_model`) and its head (`lm_head`), tied weights staying tied.
        decoder, head = language_model.get_decoder(), language_model.get_output_embeddings()
        if decoder is None or head is None or decoder is language_model:
            raise ValueError(
                f"language_model ({type(language_model).__name__}) must be a causal LM with a decoder "
                "(get_decoder()) and an LM head (get_output_embeddings()), e.g. AutoModelForCausalLM.from_pretrained"
            )
        with torch.device("meta"):
            model = cls(config)
        parts = model.model
        parts.language_model = decoder
        model.lm_head = head
        model.config.text_config = language_model.config
        model._tie_to_language_model_embeddings()
        if getattr(language_model, "generation_config", None) is not None:
            # Keep the LLM's own generation defaults (chat end-of-turn ids, sampling settings).
            model.generation_config = copy.deepcopy(language_model.generation_config)
        model._suppress_placeholders()
        parts.motion_encoder = motion_encoder
        parts.video_encoder = video_encoder
        parts.motion_projector = parts.motion_projector.to_empty(device=language_model.device)
        parts.video_projector = parts.video_projector.to_empty(device=language_model.device)
        for projector in (parts.motion_projector, parts.video_projector):
            for module in projector.modules():
                model._init_weights(module)
        dtype = language_model.dtype
        parts.motion_projector.to(dtype)
        parts.video_projector.to(dtype)
        if config.freeze_encoders:
            model.freeze_encoders()
        return model


__all__ = [
    "HuMoConCausalLMOutputWithPast",
    "HuMoConForCausalLM",
    "HuMoConModalityOutput",
    "HuMoConModel",
    "HuMoConModelOutputWithPast",
    "HuMoConModalityProjector",
    "HuMoConPreTrainedModel",
]
