"""HuMoCon question-answering model: a causal LLM reading motion and video through frozen concept encoders.

The encoders turn a motion clip (or a video) into a short sequence of concept features; one projector per
modality maps them into the LLM's embedding space, where they replace the `<motion>` / `<video>`
placeholder tokens that the processor expanded to the right counts.

Remote-code rule: this file imports only external libraries and same-folder modules (`from .x import Y`).
"""

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache
from transformers.utils import ModelOutput, logging
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple

from .configuration_humocon import HuMoConConfig
from .modeling_humocon_encoders import HuMoConMotionEncoder, HuMoConVideoEncoder

logger = logging.get_logger(__name__)

# Inputs only needed to fill placeholder embeddings: once the prompt sits in the KV cache they are dead weight.
MODALITY_INPUT_NAMES = (
    "motion_values",
    "motion_attention_mask",
    "pixel_values_videos",
    "video_timestamps",
    "video_flow",
)


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
    _no_split_modules: ClassVar[list[str]] = ["HuMoConModalityProjector"]
    _skip_keys_device_placement: ClassVar[list[str]] = ["cache", "past_key_values"]

    @torch.no_grad()
    def _init_weights(self, module):
        if isinstance(module, HuMoConModalityProjector):
            std = self.config.initializer_range
            for linear in (module.linear_1, module.linear_2):
                nn.init.normal_(linear.weight, mean=0.0, std=std)
                if linear.bias is not None:
                    nn.init.zeros_(linear.bias)
        elif not isinstance(module, (nn.Linear, nn.Embedding)):
            super()._init_weights(module)


class HuMoConForCausalLM(HuMoConPreTrainedModel, GenerationMixin):
    """
    HuMoCon: an LLM (`language_model`, any causal LM) that answers questions about a motion, a video, both or
    neither. The motion and video concept encoders are frozen; `motion_projector` / `video_projector` are the
    only new weights of stage 2 (modality translation); stage 3 adds LoRA adapters to the LLM.
    """

    def __init__(self, config: HuMoConConfig):
        super().__init__(config)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        # Keep one config object so resizing the vocabulary updates what `save_pretrained` writes.
        self.config.text_config = self.language_model.config
        self.motion_encoder = HuMoConMotionEncoder(config.motion_config)
        self.video_encoder = HuMoConVideoEncoder(config.video_config)
        text_hidden = config.text_config.hidden_size
        self.motion_projector = HuMoConModalityProjector(
            _encoder_feature_size(config.motion_config, config.use_motion_quantized),
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
        self._suppress_placeholders()
        if config.freeze_encoders:
            self.freeze_encoders()

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

    # ----------------------------------------------------------------------------------------------------
    # Embedding delegation (generation, resizing and peft look these up on the wrapper).
    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, new_embeddings: nn.Module):
        self.language_model.set_output_embeddings(new_embeddings)

    def get_decoder(self):
        return self.language_model.get_decoder()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        # Loading swaps in fresh Parameters (requires_grad=True) after __init__ froze the encoders: freeze again.
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True: (model, info)
        if model.config.freeze_encoders:
            model.freeze_encoders()
        model._suppress_placeholders()  # checkpoints saved before placeholders were suppressed
        return loaded

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
        return list(self.motion_projector.parameters()) + list(
            self.video_projector.parameters()
        )

    # ----------------------------------------------------------------------------------------------------
    # Modality features.
    @staticmethod
    def _encoder_grad_enabled(encoder: nn.Module) -> bool:
        return torch.is_grad_enabled() and any(
            p.requires_grad for p in encoder.parameters()
        )

    def get_motion_features(
        self,
        motion_values: torch.Tensor,
        motion_attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """
        Encode and project motion clips.

        Args:
            motion_values (`torch.FloatTensor` of shape `(num_clips, num_frames, feature_size)`): normalised
                per-frame pose features from the processor.
            motion_attention_mask (`torch.LongTensor` of shape `(num_clips, num_frames)`, *optional*): 1 for
                real frames.

        Returns:
            `(features, token_mask, concept_ids)`: projected features `(num_clips, num_tokens, hidden_size)`, the
            token mask `(num_clips, num_tokens)` (bool, `ceil(valid_frames / stride)` ones per clip) and the
            concept ids `(num_clips, num_tokens)`.
        """
        if motion_values.ndim != 3:
            raise ValueError(
                f"motion_values must have shape (num_clips, num_frames, feature_size), got {tuple(motion_values.shape)}"
            )
        encoder_dtype = self.motion_encoder.dtype
        with torch.set_grad_enabled(self._encoder_grad_enabled(self.motion_encoder)):
            outputs = self.motion_encoder(
                motion_values=motion_values.to(encoder_dtype),
                motion_attention_mask=motion_attention_mask,
                return_dict=True,
            )
        features = (
            outputs.quantized
            if self.config.use_motion_quantized
            else outputs.last_hidden_state
        )
        token_mask = getattr(outputs, "attention_mask", None)
        if token_mask is None:
            token_mask = torch.ones(
                features.shape[:2], dtype=torch.bool, device=features.device
            )
        projected = self.motion_projector(
            features.to(self.motion_projector.linear_1.weight.dtype)
        )
        return projected, token_mask.bool(), getattr(outputs, "concept_ids", None)

    def get_video_features(
        self,
        pixel_values_videos: torch.Tensor,
        video_timestamps: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """
        Encode and project videos.

        Args:
            pixel_values_videos (`torch.FloatTensor` of shape `(num_videos, num_key_frames, 3, size, size)`).
            video_timestamps (`torch.FloatTensor` of shape `(num_videos, num_key_frames)`, *optional*): key-frame
                times in seconds; the video encoder embeds them (key-frame indices when absent).

        Returns:
            `(features, token_mask, concept_ids)` with `num_key_frames * video_tokens_per_frame` tokens per video.
        """
        if pixel_values_videos.ndim != 5:
            raise ValueError(
                "pixel_values_videos must have shape (num_videos, num_key_frames, 3, size, size), got "
                f"{tuple(pixel_values_videos.shape)}"
            )
        encoder_dtype = self.video_encoder.dtype
        with torch.set_grad_enabled(self._encoder_grad_enabled(self.video_encoder)):
            outputs = self.video_encoder(
                pixel_values_videos=pixel_values_videos.to(encoder_dtype),
                video_timestamps=video_timestamps,
                return_dict=True,
            )
        features = (
            outputs.quantized
            if self.config.use_video_quantized
            else outputs.last_hidden_state
        )
        token_mask = getattr(outputs, "attention_mask", None)
        if token_mask is None:
            token_mask = torch.ones(
                features.shape[:2], dtype=torch.bool, device=features.device
            )
        projected = self.video_projector(
            features.to(self.video_projector.linear_1.weight.dtype)
        )
        return projected, token_mask.bool(), getattr(outputs, "concept_ids", None)

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

    def _merge(
        self,
        input_ids: torch.LongTensor | None,
        inputs_embeds: torch.Tensor,
        features: torch.Tensor | None,
        token_mask: torch.Tensor | None,
        token_id: int | None,
        name: str,
        source: str,
    ) -> torch.Tensor:
        """Write `features` (valid tokens only, clip after clip) into the placeholder positions."""
        if token_id is None:
            if features is None:
                return inputs_embeds
            raise ValueError(
                f"{source} were given but config.{name}_token_id is not set; build the model with "
                "HuMoConForCausalLM.from_parts(...) or set the placeholder token id in the config"
            )
        mask = self.get_placeholder_mask(input_ids, inputs_embeds, token_id)
        n_tokens = int(mask.sum())
        where = "input_ids" if input_ids is not None else "inputs_embeds"
        if features is None:
            if n_tokens:  # as LLaVA does: without media a placeholder is an ordinary token
                logger.warning_once(
                    f"{n_tokens} <{name}> tokens in {where} but no {source} were given: they are read as text. Pass "
                    f"the processor's {source} with the text for the model to see the {name}."
                )
            return inputs_embeds
        flat = features[token_mask]
        if n_tokens != flat.shape[0]:
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
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> tuple | HuMoConCausalLMOutputWithPast:
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
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Targets for the next-token loss; -100 is ignored. Shifted inside the LLM's loss. With gradient
                accumulation, Trainer passes `num_items_in_batch`, which is forwarded to the loss so the loss is
                normalised once over the whole accumulated batch.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        motion_features = motion_mask = motion_concepts = None
        if motion_values is not None:
            motion_features, motion_mask, motion_concepts = self.get_motion_features(
                motion_values, motion_attention_mask
            )
        inputs_embeds = self._merge(
            input_ids,
            inputs_embeds,
            motion_features,
            motion_mask,
            self.config.motion_token_id,
            "motion",
            "motion_values",
        )

        video_features = video_mask = video_concepts = None
        if pixel_values_videos is not None:
            video_features, video_mask, video_concepts = self.get_video_features(
                pixel_values_videos, video_timestamps
            )
        inputs_embeds = self._merge(
            input_ids,
            inputs_embeds,
            video_features,
            video_mask,
            self.config.video_token_id,
            "video",
            "pixel_values_videos",
        )

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            labels=labels,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            return_dict=True,
            **kwargs,
        )
        return HuMoConCausalLMOutputWithPast(
            loss=outputs.loss,
            logits=outputs.logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            motion_hidden_states=motion_features[motion_mask]
            if motion_features is not None
            else None,
            video_hidden_states=video_features[video_mask]
            if video_features is not None
            else None,
            motion_concept_ids=motion_concepts,
            video_concept_ids=video_concepts,
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
        # Build on the meta device, then hand over the real modules: no second copy of the LLM in memory.
        with torch.device("meta"):
            model = cls(config)
        model.language_model = language_model
        model.config.text_config = language_model.config
        if getattr(language_model, "generation_config", None) is not None:
            # Keep the LLM's own generation defaults (chat end-of-turn ids, sampling settings).
            model.generation_config = copy.deepcopy(language_model.generation_config)
        model._suppress_placeholders()
        model.motion_encoder = motion_encoder
        model.video_encoder = video_encoder
        model.motion_projector = model.motion_projector.to_empty(
            device=language_model.device
        )
        model.video_projector = model.video_projector.to_empty(
            device=language_model.device
        )
        model._init_weights(model.motion_projector)
        model._init_weights(model.video_projector)
        dtype = language_model.dtype
        model.motion_projector.to(dtype)
        model.video_projector.to(dtype)
        if config.freeze_encoders:
            model.freeze_encoders()
        return model


__all__ = [
    "HuMoConCausalLMOutputWithPast",
    "HuMoConForCausalLM",
    "HuMoConModalityProjector",
    "HuMoConPreTrainedModel",
]
