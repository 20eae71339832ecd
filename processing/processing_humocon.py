"""MotionVideoProcessor: one object that turns a user's text, motion files and video files into model inputs.

It combines a tokenizer, the motion feature extractor and the video processor. `<motion>` and `<video>`
placeholders in the text are expanded to exactly as many tokens as the encoders produce for each input
(`ceil(frames / motion_token_stride)` for a motion, `num_frames * video_tokens_per_frame` for a video), so
the model can merge encoder features at those positions with a count check.

This module is exported with checkpoints for `trust_remote_code=True`, so it only imports external
libraries and same-folder modules.

Why one file of ~800 lines: it is one class, `MotionVideoProcessor`, in transformers' place for a model's processor
(`processing_<model>.py`); what is not the processor's own is elsewhere (the chat-template rewrite in
`chat_template.py`, decoding in `video_decoding.py`, motion features in `feature_extraction_motion.py`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Sequence
from typing import Any, ClassVar, TypedDict

import numpy as np
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessingKwargs, ProcessorMixin, TextKwargs
from transformers.utils import logging
from transformers.video_processing_utils import VideoProcessorMixin

from .feature_extraction_motion import MotionFeatureExtractor
from .video_processing_humocon import HuMoConVideoProcessor

logger = logging.get_logger(__name__)

IGNORE_INDEX = -100

# Used when neither the processor nor the tokenizer has a chat template: ChatML with typed content.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'text' %}{{ item['text'] }}"
    "{% elif item['type'] == 'motion' %}{{ '<motion>' }}"
    "{% elif item['type'] == 'video' %}{{ '<video>' }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

class MotionKwargs(TypedDict, total=False):
    """Arguments of the motion feature extractor at call time (`motion_kwargs`)."""

    padding: bool | str | None
    max_frames: int | None
    truncation: bool | None
    pad_to_multiple_of: int | None
    return_attention_mask: bool | None


class MotionVideoVideosKwargs(TypedDict, total=False):
    """Arguments of the video processor at call time (`videos_kwargs`): `fps` of array videos (one value or one per
    video; files know theirs), `num_frames` key frames per video (the video processor's own by default),
    `sampling_fps` of the key frames, `return_flow` for the velocity target."""

    fps: float | list[float | None] | None
    num_frames: int | None
    sampling_fps: float | None
    return_flow: bool | None
    do_sample_frames: bool | None
    do_rescale: bool | None
    rescale_factor: float | None
    do_normalize: bool | None
    image_mean: list[float] | None
    image_std: list[float] | None
    return_tensors: str | None


class MotionVideoProcessorKwargs(ProcessingKwargs, total=False):
    """Everything `MotionVideoProcessor.__call__` takes besides its inputs, by modality (transformers' convention):
    `text_kwargs` (tokenizer), `motion_kwargs`, `videos_kwargs`, and `return_labels` (labels for training). Loose keys
    (`padding=...`, `return_flow=True`, `video_fps=...`) reach the component that takes them."""

    text_kwargs: TextKwargs
    motion_kwargs: MotionKwargs
    videos_kwargs: MotionVideoVideosKwargs
    return_labels: bool | None


class _StandardModalitiesKwargs(ProcessingKwargs, total=False):
    """`MotionVideoProcessorKwargs` without the motion modality: what transformers' own kwargs merging can handle
    (it knows text / images / videos / audio only)."""

    text_kwargs: TextKwargs
    videos_kwargs: MotionVideoVideosKwargs
    return_labels: bool | None


# transformers reads the per-modality TypedDicts from these annotations as classes (`...["videos_kwargs"].__annotations__`);
# under `from __future__ import annotations` they are forward references until resolved here.
for _kwargs_class in (MotionVideoProcessorKwargs, _StandardModalitiesKwargs):
    _kwargs_class.__annotations__.update(typing.get_type_hints(_kwargs_class))


# The video component's attribute name in checkpoints saved before it took transformers' standard `video_processor`.
LEGACY_VIDEO_ATTRIBUTE = "video_feature_extractor"


def _legacy_video_settings(settings: dict) -> dict:
    """Video processor settings as saved by the feature-extractor version, in the video processor's terms."""
    settings = dict(settings)
    kind = settings.pop("feature_extractor_type", None)
    settings.setdefault("video_processor_type", kind or HuMoConVideoProcessor.__name__)
    auto_map = settings.get("auto_map")
    if isinstance(auto_map, dict) and "AutoFeatureExtractor" in auto_map and "AutoVideoProcessor" not in auto_map:
        settings["auto_map"] = {"AutoVideoProcessor": auto_map["AutoFeatureExtractor"]}
    return settings


# Keys under which a content item may carry its motion / video.
_MEDIA_KEYS = {"motion": ("motion", "path", "array", "url"), "video": ("video", "path", "array", "url")}


class MotionVideoProcessor(ProcessorMixin):
    r"""
    Processor for HuMoCon: tokenizer + [`MotionFeatureExtractor`] + [`HuMoConVideoProcessor`].

    Args:
        tokenizer ([`PreTrainedTokenizerBase`]):
            The LLM's tokenizer. `motion_token` and `video_token` are added to it as special tokens if missing.
        motion_feature_extractor ([`MotionFeatureExtractor`]):
            Turns SMPL-22 joints (arrays, BVH / HumanML3D / AMASS files) into normalised per-frame features.
        video_processor ([`HuMoConVideoProcessor`]):
            Decodes videos, samples key frames, normalises them for the vision tower, optionally computes flow.

    Components follow transformers' naming, so its processor loading finds them by the class name saved with them
    (registered by `humocon_hf.register_auto_classes`, or by their `auto_map` for remote code): the motion feature
    extractor through `AutoFeatureExtractor`, the video processor (a backend-free `VideoProcessorMixin` that decodes
    with OpenCV and numpy, since torchvision has no CPU build for our torch) through `AutoVideoProcessor`.
    Checkpoints saved before the video component took its standard name (`video_feature_extractor`) still load:
    `get_processor_dict` renames their entry, and `video_feature_extractor=` is still accepted as an argument.
        chat_template (`str`, *optional*):
            A Jinja template for typed content (`text` / `motion` / `video` items). When `None`, the tokenizer's
            own template is used on text in which each motion / video item became its placeholder; when the
            tokenizer has none either, a ChatML template is used.
        motion_token (`str`, defaults to `"<motion>"`): placeholder for one motion.
        video_token (`str`, defaults to `"<video>"`): placeholder for one video.
        motion_token_stride (`int`, defaults to 4):
            Frames per motion token; must equal the motion encoder's temporal downsampling.
        video_tokens_per_frame (`int`, defaults to 1):
            Tokens per video key frame; must equal the video encoder's setting.
    """

    def __init__(
        self,
        tokenizer=None,
        motion_feature_extractor=None,
        video_processor=None,
        chat_template: str | None = None,
        motion_token: str = "<motion>",
        video_token: str = "<video>",
        motion_token_stride: int = 4,
        video_tokens_per_frame: int = 1,
        **kwargs,
    ):
        if motion_feature_extractor is None:
            motion_feature_extractor = MotionFeatureExtractor()
        legacy_video = kwargs.pop(LEGACY_VIDEO_ATTRIBUTE, None)
        if legacy_video is not None:
            if video_processor is not None:
                raise ValueError(f"pass the video processor once, as video_processor= (not also {LEGACY_VIDEO_ATTRIBUTE}=)")
            video_processor = legacy_video
        if isinstance(video_processor, dict):  # settings of an older save, not yet an object
            settings = _legacy_video_settings(video_processor)
            video_processor = HuMoConVideoProcessor.from_dict(
                {k: v for k, v in settings.items() if k not in ("video_processor_type", "auto_map")})
        if video_processor is None:
            video_processor = HuMoConVideoProcessor()
        if tokenizer is None:
            raise ValueError("MotionVideoProcessor needs a tokenizer (the LLM's tokenizer)")
        if int(motion_token_stride) < 1 or int(video_tokens_per_frame) < 1:
            raise ValueError(
                f"motion_token_stride and video_tokens_per_frame must be >= 1, got {motion_token_stride} "
                f"and {video_tokens_per_frame}"
            )
        self.motion_token = motion_token
        self.video_token = video_token
        self.motion_token_stride = int(motion_token_stride)
        self.video_tokens_per_frame = int(video_tokens_per_frame)
        missing = [t for t in (motion_token, video_token) if t not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_tokens(missing, special_tokens=True)
        if tokenizer.pad_token is None:
            # Padding positions are masked by attention_mask and labels, so any token serves.
            tokenizer.pad_token = tokenizer.eos_token
        super().__init__(tokenizer, motion_feature_extractor, video_processor, chat_template=chat_template)

    # ----------------------------------------------------------------------------------------------- loading

    @classmethod
    def get_processor_dict(cls, pretrained_model_name_or_path, **kwargs):
        """transformers' settings reader, plus the rename of checkpoints saved while the video component was called
        `video_feature_extractor` (its settings then carried `feature_extractor_type` and, for remote code, an
        `AutoFeatureExtractor` entry in `auto_map`)."""
        processor_dict, kwargs = super().get_processor_dict(pretrained_model_name_or_path, **kwargs)
        if isinstance(processor_dict.get(LEGACY_VIDEO_ATTRIBUTE), dict) and "video_processor" not in processor_dict:
            processor_dict = dict(processor_dict)
            processor_dict["video_processor"] = _legacy_video_settings(processor_dict.pop(LEGACY_VIDEO_ATTRIBUTE))
        return processor_dict, kwargs

    def check_argument_for_proper_class(self, argument_name, argument):
        """transformers' component type check, except for the video processor: transformers resolves its expected
        base class `VideoProcessorMixin` by name from its top-level namespace and, failing that, from a video
        processor registry that is a torchvision placeholder when torchvision is absent (as here), so the lookup
        itself fails. The check is the same, done with the class imported directly."""
        if argument_name == "video_processor":
            if not isinstance(argument, VideoProcessorMixin):
                raise TypeError(
                    f"video_processor must be a transformers VideoProcessorMixin such as HuMoConVideoProcessor, got "
                    f"{type(argument).__name__}"
                )
            return VideoProcessorMixin
        return super().check_argument_for_proper_class(argument_name, argument)

    @property
    def video_feature_extractor(self) -> HuMoConVideoProcessor:
        """The video processor under the name it had before (kept for code written against earlier versions)."""
        return self.video_processor

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """Save the tokenizer, the sub-processors' settings and the chat template.

        With `export_remote_code=True` the folder also receives this module and the same-folder modules it
        imports, plus an `auto_map`, so `AutoProcessor.from_pretrained(folder, trust_remote_code=True)` works
        where humocon-hf is not installed. Without it the saved JSON stays free of `auto_map`.
        """
        export_remote_code = kwargs.pop("export_remote_code", False)
        if not export_remote_code:
            return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        # Instance attributes, so the classes stay unregistered. Each sub-processor names its own class in its
        # `auto_map`: that is how transformers' component loading (AutoFeatureExtractor / AutoVideoProcessor) finds
        # remote classes.
        subs = [(self.motion_feature_extractor, "AutoFeatureExtractor"), (self.video_processor, "AutoVideoProcessor")]
        self._auto_class = "AutoProcessor"
        for sub, auto_class in subs:
            sub._auto_class = auto_class
        try:
            return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)
        finally:
            del self._auto_class
            self.__dict__.pop("auto_map", None)
            for sub, _ in subs:  # custom_object_save wrote auto_map onto them; later native saves stay clean
                sub.__dict__.pop("_auto_class", None)
                sub.__dict__.pop("auto_map", None)

    # ----------------------------------------------------------------------------------------- token counts

    @property
    def motion_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.motion_token)

    @property
    def video_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.video_token)

    def num_motion_tokens(self, num_frames: int) -> int:
        """Number of encoder tokens (= placeholder copies) for a motion of `num_frames` valid frames."""
        if isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 0:
            raise ValueError(f"num_motion_tokens: num_frames must be a non-negative integer, got {num_frames!r}")
        return math.ceil(int(num_frames) / self.motion_token_stride)

    @property
    def num_video_tokens(self) -> int:
        """Number of encoder tokens (= placeholder copies) for one video."""
        return int(self.video_processor.num_frames) * self.video_tokens_per_frame

    @property
    def model_input_names(self) -> list[str]:
        names = ["input_ids", "attention_mask"]
        names += list(self.motion_feature_extractor.model_input_names)
        # Not `video_flow`: only `return_flow=True` gives it, and the question-answering model does not read it (it
        # is stage 1's velocity target); its forward still accepts it so that such outputs pass as `**inputs`.
        names += list(self.video_processor.model_input_names)
        return list(dict.fromkeys(names))

    # --------------------------------------------------------------------------------------------- __call__

    valid_processor_kwargs = MotionVideoProcessorKwargs
    # Call-time defaults (transformers' convention: processor attributes, overridden by what the call passes).
    text_kwargs: ClassVar[dict[str, Any]] = {"padding": True}  # (add_special_tokens: the tokenizer's default, True)
    common_kwargs: ClassVar[dict[str, Any]] = {"return_tensors": "pt"}

    def __call__(
        self,
        text: str | Sequence[str] | None = None,
        motions: Any = None,
        videos: Any = None,
        _assistant_spans: list[list[tuple[int, int]]] | None = None,
        _exact_spans: bool | None = None,
        **kwargs,
    ) -> BatchFeature:
        """
        Args:
            text (`str` or `list[str]`): prompts holding one `<motion>` per motion and one `<video>` per video.
            motions: one motion or a list (in order of their placeholders across the batch): (T, 22, 3) arrays
                at the feature extractor's fps, `MotionClip`s, or paths (.bvh, HumanML3D .npy, AMASS .npz).
            videos: one video or a list (in placeholder order): paths or uint8 (N, H, W, 3) RGB arrays.
            kwargs ([`MotionVideoProcessorKwargs`]): by modality or loose, among them
                - `return_labels` (`bool`, defaults to `False`): also return `labels` (input ids with padding and
                  placeholders set to -100; through `apply_chat_template`, everything but the answers is masked too);
                - `return_flow` (`bool`, defaults to `False`): also return `video_flow` (B, K-1, 2, g, g), the video
                  velocity target;
                - `video_fps` (or `videos_kwargs={"fps": ...}`): frame rate of video arrays (one value, or one per
                  video); ignored for files;
                - `padding` (defaults to `True`), `truncation`, `max_length`, `add_special_tokens`, `padding_side`...
                  for the tokenizer; `return_tensors` (defaults to `"pt"`).

        Returns:
            [`BatchFeature`] with `input_ids` and `attention_mask` (B, L); `motion_values` (M, T, D) and
            `motion_attention_mask` (M, T) for M motions; `pixel_values_videos` (V, K, 3, S, S) and
            `video_timestamps` (V, K) for V videos; optionally `video_flow` and `labels`.
        """
        # transformers' processor convention: per-modality dicts (`text_kwargs`, `videos_kwargs`, ours:
        # `motion_kwargs`) and `common_kwargs`; explicit arguments win over them.
        kwargs = dict(kwargs)
        return_labels = bool(kwargs.pop("return_labels", False))
        if "video_fps" in kwargs:  # the name of earlier versions
            kwargs.setdefault("fps", kwargs.pop("video_fps"))
        text_kwargs, motion_kwargs, video_kwargs = self._modality_kwargs(kwargs)
        return_tensors = text_kwargs.pop("return_tensors", self.common_kwargs["return_tensors"])
        # Defaults, weakest first: the processor's, then the tokenizer's own (e.g. padding="max_length" given when it was
        # loaded), then the call's.
        tokenizer_defaults = {k: v for k, v in (getattr(self.tokenizer, "init_kwargs", None) or {}).items()
                              if k in self._TEXT_KEYS and k != "return_tensors"}
        for name, value in {**self.text_kwargs, **tokenizer_defaults}.items():
            text_kwargs.setdefault(name, value)
        video_kwargs.pop("return_tensors", None)  # one tensor type for the whole output: the call's
        video_fps = video_kwargs.pop("fps", None)
        return_flow = bool(video_kwargs.pop("return_flow", False))
        motion_list = _as_list(motions, "motions")
        video_list = _as_list(videos, "videos")
        data: dict[str, Any] = {}

        motion_token_counts: list[int] = []
        if motion_list:
            motion_inputs = self.motion_feature_extractor(
                motion_list, **{"padding": "longest", **motion_kwargs, "return_tensors": "np"}
            )
            data.update(motion_inputs)
            frames = np.asarray(motion_inputs["motion_attention_mask"]).sum(axis=1)
            motion_token_counts = [self.num_motion_tokens(n) for n in frames]
        video_token_count = self.num_video_tokens
        if video_list:
            data.update(self._process_videos(video_list, video_fps, return_flow, video_kwargs))
            # the key frames each video got (num_frames, or all of them with do_sample_frames=False)
            video_token_count = int(data["pixel_values_videos"].shape[1]) * self.video_tokens_per_frame

        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            if not texts or not all(isinstance(t, str) for t in texts):
                raise ValueError(f"text must be a string or a non-empty list of strings, got {type(text).__name__}")
            expanded, spans = self._expand_placeholders(
                texts, motion_token_counts, len(video_list), _assistant_spans, video_token_count
            )
            need_offsets = spans is not None
            text_inputs = self.tokenizer(expanded, **text_kwargs, return_offsets_mapping=need_offsets)
            offsets = text_inputs.pop("offset_mapping", None)
            input_ids = text_inputs["input_ids"]
            self._check_placeholders_survived(input_ids, expanded)
            data.update(text_inputs)
            if return_labels:
                data["labels"] = self._make_labels(input_ids, text_inputs["attention_mask"], spans, offsets,
                                                   learn_end_token=not _exact_spans)
        elif motion_list == [] and video_list == []:
            raise ValueError("MotionVideoProcessor needs at least one of text, motions or videos")

        return BatchFeature(data=data, tensor_type=return_tensors)

    # Keyword arguments each component takes (the rest of a modality dict is refused by name).
    _TEXT_KEYS = frozenset({"padding", "truncation", "max_length", "add_special_tokens", "pad_to_multiple_of",
                            "return_attention_mask", "return_token_type_ids", "padding_side", "return_tensors",
                            "stride", "return_overflowing_tokens", "return_special_tokens_mask", "return_length",
                            "verbose"})
    _MOTION_KEYS = frozenset({"padding", "max_frames", "truncation", "pad_to_multiple_of", "return_attention_mask"})
    # `num_frames` per call is honoured (the placeholders follow the key frames each video gets); the video encoder
    # embeds key-frame times, so it reads any count, though a checkpoint saw its processor's own during training.
    _VIDEO_KEYS = frozenset({"fps", "sampling_fps", "return_flow", "num_frames", "do_sample_frames", "do_rescale",
                             "rescale_factor", "do_normalize", "image_mean", "image_std", "return_tensors"})

    def _merge_kwargs(self, ModelProcessorKwargs, tokenizer_init_kwargs: dict | None = None, **kwargs) -> dict:  # noqa: N803
        """transformers' kwargs merging (defaults, per-modality dicts, loose keys) with the motion modality it does not
        know handled beside it: `motion_kwargs` and loose keys only the motion feature extractor takes."""
        kwargs = dict(kwargs)
        motion = dict(kwargs.pop("motion_kwargs", None) or {})
        for key in [k for k in kwargs if k in self._MOTION_KEYS and k not in self._TEXT_KEYS | self._VIDEO_KEYS]:
            motion[key] = kwargs.pop(key)
        if ModelProcessorKwargs is MotionVideoProcessorKwargs:
            ModelProcessorKwargs = _StandardModalitiesKwargs
        merged = super()._merge_kwargs(ModelProcessorKwargs, tokenizer_init_kwargs=tokenizer_init_kwargs, **kwargs)
        merged["motion_kwargs"] = motion
        return merged

    def _modality_kwargs(self, kwargs: dict) -> tuple[dict, dict, dict]:
        """Split `text_kwargs` / `motion_kwargs` / `videos_kwargs` / `common_kwargs` (and keys given loose) into
        (tokenizer, motion feature extractor, video processor) arguments. Unknown keys are ignored with a warning, as
        transformers' processors do; a key in the wrong modality dict is refused by name."""
        kwargs = dict(kwargs)
        common = dict(kwargs.pop("common_kwargs", None) or {})
        text_given = dict(kwargs.pop("text_kwargs", None) or {})
        text = {**common, **text_given}
        motion = dict(kwargs.pop("motion_kwargs", None) or kwargs.pop("motions_kwargs", None) or {})
        video = dict(kwargs.pop("videos_kwargs", None) or {})
        given = {"text_kwargs": set(text_given), "motion_kwargs": set(motion), "videos_kwargs": set(video)}
        for name in ("images_kwargs", "audio_kwargs"):
            if kwargs.pop(name, None):
                raise ValueError(f"MotionVideoProcessor takes no {name.split('_')[0]}: {name} must be empty")
        common.pop("return_tensors", None)
        for component, values, allowed in (("text_kwargs", text, self._TEXT_KEYS),
                                           ("motion_kwargs", motion, self._MOTION_KEYS),
                                           ("videos_kwargs", video, self._VIDEO_KEYS)):
            bad = sorted(set(values) - allowed - set(common))
            if bad:
                raise ValueError(f"MotionVideoProcessor: {component} got {bad}; it takes {sorted(allowed)}")
        for key in list(kwargs):  # loose keys: the first component that takes them, never given twice
            for target, allowed, name in ((text, self._TEXT_KEYS, "text_kwargs"), (video, self._VIDEO_KEYS, "videos_kwargs"),
                                          (motion, self._MOTION_KEYS, "motion_kwargs")):
                if key in allowed:
                    if key in given[name]:  # in its modality dict too (common_kwargs only set defaults)
                        raise ValueError(f"MotionVideoProcessor: {key!r} is given twice, as a keyword argument and in "
                                         f"{name}; pass it once")
                    target[key] = kwargs.pop(key)
                    break
        if kwargs:
            logger.warning(f"MotionVideoProcessor ignores the keyword arguments {sorted(kwargs)}")
        text = {k: v for k, v in text.items() if k in self._TEXT_KEYS}
        return text, motion, video

    def _process_videos(self, videos: list, video_fps, return_flow: bool, extra: dict | None = None
                        ) -> dict[str, np.ndarray]:
        """The video processor on the whole batch (one fps per video allowed): K key frames each, stacked."""
        outputs = self.video_processor(videos, fps=video_fps, return_flow=return_flow, return_tensors="np",
                                       **(extra or {}))
        return {key: np.asarray(value) for key, value in outputs.items()}

    def _expand_placeholders(
        self,
        texts: list[str],
        motion_token_counts: list[int],
        num_videos: int,
        assistant_spans: list[list[tuple[int, int]]] | None,
        video_token_count: int | None = None,
    ) -> tuple[list[str], list[list[tuple[int, int]]] | None]:
        """Replace the i-th `<motion>` with as many copies as motion i has tokens (same for `<video>`).

        Character spans of assistant answers are shifted by the characters added before them."""
        pattern = re.compile(f"({re.escape(self.motion_token)}|{re.escape(self.video_token)})")
        n_motion = sum(t.count(self.motion_token) for t in texts)
        n_video = sum(t.count(self.video_token) for t in texts)
        if n_motion != len(motion_token_counts):
            raise ValueError(
                f"The text holds {n_motion} {self.motion_token} placeholder(s) but {len(motion_token_counts)} "
                f"motion(s) were given: put exactly one {self.motion_token} in the text for each motion"
            )
        if n_video != num_videos:
            raise ValueError(
                f"The text holds {n_video} {self.video_token} placeholder(s) but {num_videos} video(s) were "
                f"given: put exactly one {self.video_token} in the text for each video"
            )
        motion_iter = iter(motion_token_counts)
        expanded, new_spans = [], [] if assistant_spans is not None else None
        for row, text in enumerate(texts):
            pieces, shifts, added = [], [], 0  # shifts: (original end of placeholder, chars added so far)
            last = 0
            for match in pattern.finditer(text):
                pieces.append(text[last : match.start()])
                if match.group(0) == self.motion_token:
                    count = next(motion_iter)
                else:
                    count = self.num_video_tokens if video_token_count is None else video_token_count
                replacement = match.group(0) * count
                pieces.append(replacement)
                added += len(replacement) - len(match.group(0))
                shifts.append((match.end(), added))
                last = match.end()
            pieces.append(text[last:])
            expanded.append("".join(pieces))
            if new_spans is not None:
                new_spans.append([(_shift(s, shifts), _shift(e, shifts)) for s, e in assistant_spans[row]])
        return expanded, new_spans

    def _check_placeholders_survived(self, input_ids, expanded: list[str]) -> None:
        """Truncation must not cut placeholder tokens, or features and tokens would no longer match."""
        for row, (ids, text) in enumerate(zip(input_ids, expanded)):
            for token, token_id in ((self.motion_token, self.motion_token_id), (self.video_token, self.video_token_id)):
                expected = text.count(token)
                found = sum(1 for i in ids if i == token_id)
                if found != expected:
                    raise ValueError(
                        f"Sample {row}: {expected} {token} tokens were expected after expansion but {found} remain "
                        f"after tokenization (truncation cut them?): raise max_length or shorten the text"
                    )

    def _make_labels(self, input_ids, attention_mask, spans, offsets, learn_end_token: bool = True) -> list[list[int]]:
        """Labels = input ids, with padding, placeholders and (given assistant spans) all non-answer tokens -100.
        `learn_end_token`: the special token right after an answer is learned too (our spans cover the answer text;
        a template's `{% generation %}` spans are exact)."""
        special_ids = set(self.tokenizer.all_special_ids)
        placeholder_ids = {self.motion_token_id, self.video_token_id}
        labels = []
        for row, ids in enumerate(input_ids):
            row_labels = [
                tok if (mask and tok not in placeholder_ids) else IGNORE_INDEX
                for tok, mask in zip(ids, attention_mask[row])
            ]
            if spans is not None:
                keep = [False] * len(ids)
                for start, end in spans[row]:
                    last_in_span = None
                    for pos, (tok_start, tok_end) in enumerate(offsets[row]):
                        if tok_end > tok_start and tok_start < end and tok_end > start:
                            keep[pos] = True
                            last_in_span = pos
                    # Learn the end-of-turn token too, so the model stops after its answer.
                    if learn_end_token and last_in_span is not None and last_in_span + 1 < len(ids):
                        nxt = last_in_span + 1
                        if ids[nxt] in special_ids and attention_mask[row][nxt]:
                            keep[nxt] = True
                row_labels = [lab if k else IGNORE_INDEX for lab, k in zip(row_labels, keep)]
            labels.append(row_labels)
        return labels

    # ---------------------------------------------------------------------------------------- chat template

    def _render_with_generation_spans(self, messages, template, add_generation_prompt, template_kwargs):
        """Render one conversation as the tokenizer does, also returning the character spans of the template's
        `{% generation %}` blocks (transformers' own renderer, in its sandbox)."""
        from transformers.utils.chat_template_utils import render_jinja_template

        rendered, generation = render_jinja_template(
            conversations=[messages], chat_template=template, return_assistant_tokens_mask=True,
            add_generation_prompt=add_generation_prompt,
            **{**self.tokenizer.special_tokens_map, **template_kwargs},
        )
        return rendered[0], [tuple(span) for span in generation[0]]

    def apply_chat_template(
        self,
        conversation: list[dict] | list[list[dict]],
        chat_template: str | None = None,
        add_generation_prompt: bool = False,
        tokenize: bool = False,
        return_dict: bool = False,
        return_labels: bool = False,
        return_flow: bool = False,
        return_tensors: str | None = "pt",
        **kwargs,
    ):
        """Render conversations whose messages hold typed content and, with `tokenize=True`, process them.

        A message's `content` is a string or a list of items `{"type": "text", "text": ...}`,
        `{"type": "motion", "motion": path | array | MotionClip}` or `{"type": "video", "video": path | array,
        "fps": optional}` (`path` is accepted for both). With `tokenize=False` the rendered prompt string(s) are
        returned; with `tokenize=True` a [`BatchFeature`] as from `__call__` (with `return_labels=True`,
        only the assistants' answers and their end-of-turn token are learned; `return_assistant_tokens_mask=True`
        adds `assistant_masks`, 1 on those tokens).

        Other keyword arguments go where transformers sends them: the processor's own (`padding`, `padding_side`,
        `max_length`, `text_kwargs`, `motion_kwargs`, `videos_kwargs`, ..., or all of them in `processor_kwargs={...}`)
        to `__call__`, everything else (`add_system_prompt`, `tools`, `documents`, ...) to the chat template as
        variables. As in transformers, `return_dict=False` (the default) gives the token ids alone: pass
        `return_dict=True` for the model's inputs (the media features come with the ids).
        """
        # transformers 5 passes the processor's arguments as `processor_kwargs={...}`; loose keys are read as well.
        processor_kwargs = dict(kwargs.pop("processor_kwargs", None) or {})
        twice = sorted(set(processor_kwargs) & set(kwargs))
        if twice:
            raise ValueError(f"apply_chat_template: {twice} given both loose and in processor_kwargs; pass them once")
        kwargs.update(processor_kwargs)
        call_keys = self._TEXT_KEYS | self._MOTION_KEYS | self._VIDEO_KEYS | {
            "text_kwargs", "motion_kwargs", "motions_kwargs", "videos_kwargs", "common_kwargs", "images_kwargs",
            "audio_kwargs", "video_fps"}
        template_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k not in call_keys}
        return_assistant_mask = bool(template_kwargs.pop("return_assistant_tokens_mask", False))
        template_kwargs.pop("return_dict", None)
        template_kwargs.pop("tokenize", None)
        conversations, is_batched = _normalize_conversations(conversation)
        rendered, motions, videos, video_fps, spans = [], [], [], [], []
        exact_spans = False
        for conv_index, conv in enumerate(conversations):
            flat_messages, structured = [], []
            for msg_index, message in enumerate(conv):
                if not isinstance(message, dict) or "role" not in message or "content" not in message:
                    raise ValueError(
                        f"conversation {conv_index}, message {msg_index}: expected a dict with 'role' and 'content', "
                        f"got {message!r:.200}"
                    )
                items = message["content"]
                if isinstance(items, str):
                    items = [{"type": "text", "text": items}]
                parts = []
                for item_index, item in enumerate(items):
                    kind = item.get("type") if isinstance(item, dict) else None
                    if kind == "text":
                        parts.append(str(item.get("text", "")))
                    elif kind in ("motion", "video"):
                        media = _media_of(item, kind, f"conversation {conv_index}, message {msg_index}, item {item_index}")
                        if kind == "motion":
                            motions.append(media)
                            parts.append(self.motion_token)
                        else:
                            videos.append(media)
                            video_fps.append(item.get("fps"))
                            parts.append(self.video_token)
                    elif chat_template is None or tokenize:
                        # Only a template the caller passes may render other content (an image block, say) as text;
                        # our templates would drop it, and no component of ours can process it.
                        raise ValueError(
                            f"conversation {conv_index}, message {msg_index}, item {item_index}: unknown content type "
                            f"{kind!r}; expected 'text', 'motion' or 'video'"
                        )
                flat_text = "".join(parts)
                flat_messages.append({"role": message["role"], "content": flat_text})
                structured.append({"role": message["role"], "content": items})
            template = chat_template or self.chat_template
            if chat_template is None and template is not None and template == getattr(self.tokenizer, "chat_template",
                                                                                       None):
                # A processor saved without a template of its own reloads with its tokenizer's (they share
                # chat_template.jinja): that is the tokenizer's text template, rendered on text with placeholders.
                template = None
            generation_spans = None
            if template is not None and (return_labels or return_assistant_mask) and _GENERATION_BLOCK.search(template):
                # The template marks what the assistant generates ({% generation %}): learn exactly that.
                text, generation_spans = self._render_with_generation_spans(
                    structured, template, add_generation_prompt, template_kwargs
                )
            elif template is not None:
                text = self.tokenizer.apply_chat_template(
                    structured, chat_template=template, tokenize=False, add_generation_prompt=add_generation_prompt,
                    **template_kwargs,
                )
            elif getattr(self.tokenizer, "chat_template", None):
                text = self.tokenizer.apply_chat_template(
                    flat_messages, tokenize=False, add_generation_prompt=add_generation_prompt, **template_kwargs
                )
            else:
                text = self.tokenizer.apply_chat_template(
                    structured,
                    chat_template=DEFAULT_CHAT_TEMPLATE,
                    tokenize=False,
                    add_generation_prompt=add_generation_prompt,
                    **template_kwargs,
                )
            rendered.append(text)
            if generation_spans is not None:
                spans.append(generation_spans)
                exact_spans = True
            else:
                spans.append(_find_answer_spans(text, flat_messages, conv_index))

        if not tokenize:
            return rendered if is_batched else rendered[0]
        need_labels = return_labels or return_assistant_mask
        outputs = self(
            text=rendered,
            motions=motions or None,
            videos=videos or None,
            video_fps=video_fps if videos else None,
            return_labels=need_labels,
            return_flow=return_flow,
            add_special_tokens=False,  # the template already holds BOS / role markers
            return_tensors=return_tensors,
            _assistant_spans=spans if need_labels else None,
            _exact_spans=exact_spans,
            **kwargs,
        )
        if return_assistant_mask:
            labels = outputs["labels"] if return_labels else outputs.pop("labels")
            outputs["assistant_masks"] = (labels != -100).astype(np.int64) if isinstance(labels, np.ndarray) else (
                (labels != -100).long() if hasattr(labels, "long") else [[int(x != -100) for x in row] for row in labels]
            )
        return outputs if return_dict else outputs["input_ids"]


    # ------------------------------------------------------------------------------------------- answer options

    def answer_options_kwargs(self, inputs, options, end_token_ids: Sequence[int] | None = None,
                              num_beams: int = 1) -> dict:
        """`generate` keyword arguments that keep each row's answer to the options its question lists.

        Args:
            inputs: what `apply_chat_template(..., add_generation_prompt=True, return_dict=True)` returned (its
                `input_ids` width is where the answers start).
            options: per row, the allowed answers (`list[str]`) or None for a free answer; one `list[str]` for a
                single-row batch. `listed_options(question)` reads them from a question ("..., left or right?").
            end_token_ids: the tokens that end an answer; default the tokenizer's end of turn (`eos_token`).

        Returns:
            `{"logits_processor": LogitsProcessorList([...])}`, or `{}` when no row has options, so that
            ``model.generate(**inputs, **processor.answer_options_kwargs(inputs, options))`` works either way.
        """
        from transformers import LogitsProcessorList

        from .answer_options import AnswerOptionsLogitsProcessor

        input_ids = inputs["input_ids"]
        rows = len(input_ids)
        if options is not None and len(options) and all(isinstance(o, str) for o in options):
            options = [list(options)]
        if options is None or all(o is None for o in options):
            return {}
        if len(options) != rows:
            raise ValueError(f"options: expected one entry (a list of answers or None) per row of input_ids "
                             f"({rows}), got {len(options)}")
        if end_token_ids is None:
            end_token_ids = [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else []
        width = input_ids.shape[-1] if hasattr(input_ids, "shape") else len(input_ids[0])
        processor = AnswerOptionsLogitsProcessor(self.tokenizer, options, prompt_length=width,
                                                 end_token_ids=end_token_ids,
                                                 pad_token_id=self.tokenizer.pad_token_id, num_beams=num_beams)
        return {"logits_processor": LogitsProcessorList([processor])}


_GENERATION_BLOCK = re.compile(r"\{%-?\s*generation\s*-?%\}")


def _openai_image_block(item):
    """OpenAI's `{"type": "image_url", "image_url": {"url": ...}}` as transformers' `{"type": "image", "url": ...}`."""
    if isinstance(item, dict) and item.get("type") == "image_url" and "image_url" in item:
        info = item["image_url"]
        return {"type": "image", "url": info.get("url", "") if isinstance(info, dict) else info}
    return item


def _as_list(value, name: str) -> list:
    """None -> [], one item -> [item], list/tuple of items -> list. A bare array is one item."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            raise ValueError(f"{name} is an empty list: pass None when there are no {name}")
        return list(value)
    return [value]


def _shift(pos: int, shifts: list[tuple[int, int]]) -> int:
    added = 0
    for end, total in shifts:
        if end <= pos:
            added = total
        else:
            break
    return pos + added


def _media_of(item: dict, kind: str, where: str):
    for key in _MEDIA_KEYS[kind]:
        if item.get(key) is not None:
            return item[key]
    raise ValueError(f"{where}: a '{kind}' item needs one of the keys {list(_MEDIA_KEYS[kind])}")


def _normalize_conversations(conversation) -> tuple[list[list[dict]], bool]:
    """One conversation or a batch, as plain dicts: a conversation object with `.messages` counts as its messages;
    message and content objects (dataclasses, pydantic models such as the OpenAI SDK's) become dicts; keys whose value
    is None are dropped (APIs send `tool_calls=None`, which templates would render). As transformers does."""
    if hasattr(conversation, "messages"):
        conversation = conversation.messages
    if not isinstance(conversation, (list, tuple)) or len(conversation) == 0:
        raise ValueError("conversation must be a non-empty list of messages (or a list of such lists)")
    if isinstance(conversation[0], (list, tuple)) or hasattr(conversation[0], "messages"):
        conversations, batched = [list(getattr(c, "messages", c)) for c in conversation], True
    else:
        conversations, batched = [list(conversation)], False
    return [[_plain_message(m) for m in conv] for conv in conversations], batched


def _as_dict(value):
    """A message or content-block object (dataclass, pydantic model such as the OpenAI SDK's) as a dict; anything else
    as it is. One level only: media inside a block (a `MotionClip` is a dataclass too) stay objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if callable(getattr(value, "model_dump", None)):
        return value.model_dump()
    return value


def _plain_message(message):
    message = _as_dict(message)
    if not isinstance(message, dict):
        return message
    message = {key: value for key, value in message.items() if value is not None}
    if isinstance(message.get("tool_calls"), (list, tuple)):
        message["tool_calls"] = [_as_dict(call) for call in message["tool_calls"]]
    if isinstance(message.get("content"), (list, tuple)):
        message["content"] = [_openai_image_block(_as_dict(item)) for item in message["content"]]
    return message


def _find_answer_spans(text: str, messages: list[dict], conv_index: int) -> list[tuple[int, int]]:
    """Character spans of the assistant answers in the rendered text.

    Every message is located in order (not only the answers), so an answer word that also occurs in an
    earlier question is not mistaken for the answer."""
    spans, cursor = [], 0
    for message in messages:
        content = message["content"]
        if not content:
            continue
        start = text.find(content, cursor)
        if start < 0:
            if message["role"] != "assistant":
                continue  # templates may rewrite system/user text; only answers must be found
            raise ValueError(
                f"conversation {conv_index}: the chat template changed an assistant answer, so its tokens cannot "
                f"be located for the labels: {content[:80]!r}"
            )
        if message["role"] == "assistant":
            spans.append((start, start + len(content)))
        cursor = start + len(content)
    return spans


__all__ = ["MotionVideoProcessor", "DEFAULT_CHAT_TEMPLATE", "IGNORE_INDEX"]
