"""Inference with a HuMoCon checkpoint: load it, check and read the user's media, build the conversation, and answer.

One place for what `humocon ask`, the Space (`app/app.py`), evaluation and fine-tuning share:

* `load_checkpoint` - `(model, processor, chat defaults)` of a folder or Hub id through the Auto classes.
* `check_media` / `load_media` - fail early on a bad motion or video file, naming it and the accepted formats.
* `user_message` / `build_conversation` - a user turn in the training format (media first, then the question).
* `stream_answer` - greedy generation streamed as text (`TextIteratorStreamer`), kept to the options a question
  lists ("left or right?": `options_kwargs`).
* `make_answer_fn` - batched, left-padded greedy answers in exactly the training prompt format (evaluation);
  `answer_fn_from_model` - the one-row-at-a-time adapter for any generation model and processor.
* `concept_lines` - a motion's concept timeline in words (`humocon ask --concepts`).

User errors raise `UserInputError` with one line saying what is wrong and what to do (the CLI prints it as is).
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from humocon_hf.processing.motion_io import MOTION_EXTENSIONS
from humocon_hf.processing.video_decoding import VIDEO_EXTENSIONS

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from humocon_hf.evaluation import AnswerFn
    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor
    from humocon_hf.recipes import ModelArguments
    from humocon_hf.training.qa_collator import HuMoConQACollator
CHAT_DEFAULTS = "humocon_chat.json"  # the chat settings a checkpoint was trained and evaluated with (system prompt,
# answer length, bf16 autocast)


class UserInputError(Exception):
    """A user error: printed as one line (with what to do) instead of a traceback."""


def load_checkpoint(model_dir: str, device: str = "auto", dtype: str = "auto", trust_remote_code: bool = False):
    """`(model, processor, chat_defaults)` of a HuMoCon checkpoint folder or Hub id, through the Auto classes."""
    import torch
    from transformers import AutoModel, AutoProcessor

    from humocon_hf.auto import register_auto_classes

    path = Path(model_dir).expanduser()
    looks_like_hub_id = model_dir.count("/") == 1 and not model_dir.startswith((".", "/", "~"))
    if not path.exists() and not looks_like_hub_id:
        raise UserInputError(f"--model {model_dir}: no such folder; give the output folder of `humocon demo` or a Hub id")
    if path.is_dir() and not (path / "config.json").is_file():
        raise UserInputError(
            f"--model {model_dir}: the folder has no config.json, so it is not a checkpoint; `humocon demo` writes one "
            "to its --output-dir (default ./humocon_demo) when it finishes"
        )
    register_auto_classes()
    kwargs = {"trust_remote_code": trust_remote_code}
    if dtype != "auto":
        kwargs["dtype"] = getattr(torch, dtype)
    source = str(path) if path.is_dir() else model_dir
    if path.is_dir():
        try:
            model_type = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (ValueError, UnicodeDecodeError, AttributeError) as err:
            raise UserInputError(f"--model {model_dir}: config.json is not a valid JSON object ({err})") from None
        if model_type != "humocon":
            raise UserInputError(f"--model {model_dir}: config.json says model_type {model_type!r}; a HuMoCon checkpoint has "
                           "'humocon' (the output folder of `humocon demo` or a checkpoint pushed with `humocon push`)")
    try:
        model = AutoModel.from_pretrained(source, **kwargs).eval()
    except Exception as err:  # noqa: BLE001 - every loading failure becomes one line saying what is missing
        raise UserInputError(_load_error(model_dir, "model", err)) from err
    try:
        tokenizer = _fast_tokenizer(path, trust_remote_code) if path.is_dir() else None
        kwargs = {"tokenizer": tokenizer} if tokenizer is not None else {}
        processor = AutoProcessor.from_pretrained(source, trust_remote_code=trust_remote_code, **kwargs)
    except Exception as err:  # noqa: BLE001
        raise UserInputError(_load_error(model_dir, "processor", err)) from err
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    defaults = {}
    if path.is_dir() and (path / CHAT_DEFAULTS).is_file():
        defaults = json.loads((path / CHAT_DEFAULTS).read_text())
    return model, processor, defaults


def _fast_tokenizer(folder: Path, trust_remote_code: bool):
    """The folder's tokenizer, given the added tokens of its tokenizer.json read from the file's head. transformers 5
    leaves them out of tokenizer_config.json for `tokenizers` tokenizers and then parses the whole tokenizer.json in
    Python to find them (3.5 MB for SmolLM2: 0.1-0.3 s of `humocon ask`) before the Rust tokenizer reads it again.
    None (transformers' own path) when the files are not in that form."""
    from transformers import AddedToken, AutoTokenizer

    config_file, tokenizer_file = folder / "tokenizer_config.json", folder / "tokenizer.json"
    try:
        if "added_tokens_decoder" in json.loads(config_file.read_text(encoding="utf-8")):
            return None
        text = tokenizer_file.read_text(encoding="utf-8")
        start = text.find('"added_tokens"')
        if start < 0 or start > text.find('"model"'):  # not the top-level key written before the vocabulary
            return None
        added, _ = json.JSONDecoder().raw_decode(text, text.index("[", start))
        decoder = {int(token.pop("id")): AddedToken(**token) for token in added}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return None
    return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code, added_tokens_decoder=decoder)


def write_chat_defaults(folder: Path, system_prompt: str | None, max_new_tokens: int, bf16: bool) -> None:
    """Record how a checkpoint was tuned and evaluated (`CHAT_DEFAULTS`, read back by `load_checkpoint`): its system
    prompt, answer length and whether it generated under bf16 autocast (where the CPU has it)."""
    from humocon_hf.io_utils import write_json_atomic

    write_json_atomic(Path(folder) / CHAT_DEFAULTS,
                      {"system_prompt": system_prompt, "max_new_tokens": max_new_tokens, "bf16": bool(bf16)})


def _load_error(model_dir: str, what: str, err: Exception) -> str:
    """One line for a checkpoint that does not load: what is missing or broken, and what to do."""
    text = str(err)
    lines = [line.strip() for line in text.strip().splitlines()]
    # A config's `@strict` validation says the field on one line and what was wrong with it on the next
    first = (" ".join(lines[:2]) if lines[0].endswith(":") else lines[0]) if lines else type(err).__name__
    lowered = text.lower()
    if "offline" in lowered or "cannot find the requested files" in lowered or "connect" in lowered:
        hint = ("it is not a local folder and the Hub cannot be reached (offline / HF_HUB_OFFLINE=1): download it "
                "first (`huggingface-cli download ...`) and pass the folder")
    elif what == "model" and ("safetensors" in lowered and ("no file named" in lowered or "does not appear" in lowered)
                              or "no file named" in lowered):
        hint = "the folder has no weights (model.safetensors); copy the whole checkpoint folder"
    elif what == "model" and ("header" in lowered or "incomplete" in lowered or "deserializ" in lowered
                              or "safetensor" in lowered):
        hint = "model.safetensors is truncated or corrupt; copy or download the checkpoint again"
    elif what == "processor":
        hint = ("the processor / tokenizer files (processor_config.json, tokenizer.json, tokenizer_config.json) are "
                "missing or broken; a checkpoint saved by `humocon demo` or `humocon push` has them")
    else:
        hint = "the folder is not a loadable HuMoCon checkpoint (see the message)"
    return f"--model {model_dir}: cannot load the {what} ({type(err).__name__}: {first[:300]}); {hint}"


def check_media(motion: str | None, video: str | None) -> None:
    """Fail early, naming the file and the accepted formats."""
    for value, kind, extensions in ((motion, "motion", MOTION_EXTENSIONS), (video, "video", VIDEO_EXTENSIONS)):
        if value is None:
            continue
        path = Path(value)
        if path.is_dir():
            raise UserInputError(f"--{kind} {value}: is a folder; give one {kind} file ({', '.join(extensions)})")
        if not path.is_file():
            raise UserInputError(f"--{kind} {value}: file not found")
        if path.suffix.lower() not in extensions:
            raise UserInputError(f"--{kind} {value}: unsupported file type {path.suffix!r}; use one of {', '.join(extensions)}")


def load_media(processor: MotionVideoProcessor, motion: str | None, video: str | None, motion_fps: float | None = None,
               skeleton: str | None = None):
    """Read the files once (motion to SMPL-22 joints at the processor's rate) so bad files fail before generating.
    ``skeleton`` is the ``.asf`` of an ``.amc`` motion (by default the one beside it)."""
    motion_value = None
    if motion is not None:
        from humocon_hf.processing.motion_io import load_motion

        if motion_fps is not None and not (isinstance(motion_fps, (int, float)) and 0 < motion_fps < float("inf")):
            raise UserInputError(f"--motion-fps must be a positive frame rate, got {motion_fps!r}")
        kwargs = {"source_fps": motion_fps} if motion_fps is not None else {}
        if skeleton is not None:
            if Path(motion).suffix.lower() != ".amc":
                raise UserInputError(f"--skeleton {skeleton}: a skeleton file goes with an .amc motion, not {motion}")
            kwargs["skeleton"] = skeleton
        if Path(motion).suffix.lower() == ".npz":
            raise UserInputError(f"--motion {motion}: AMASS .npz files hold body-model parameters, which need the SMPL+H / "
                           "SMPL-X model files (licence-restricted, not shipped): convert them to joints in Python with "
                           "humocon_hf.processing.motion_io.load_amass_npz(path, body_model_dir=...) and np.save the "
                           "(T, 22, 3) joints as a .npy file, which this command reads")
        try:
            clip = load_motion(motion, fps=processor.motion_feature_extractor.fps, **kwargs)
        except (ValueError, FileNotFoundError, ImportError) as err:
            raise UserInputError(f"--motion {motion}: {err}") from err
        motion_value = clip.joints
        fe = processor.motion_feature_extractor
        if len(motion_value) > fe.max_frames:
            print(f"note: --motion {motion} lasts {clip.duration:.1f} s ({len(motion_value)} frames at {fe.fps:g} fps); "
                  f"the model reads its first {fe.max_frames} frames ({fe.max_frames / fe.fps:.1f} s)", file=sys.stderr)
    video_value = None
    if video is not None:
        # Decode only the key frames the processor will use (not every frame: ~5 GB per minute of 720p), to fail
        # early on a bad file; the processor reads the same key frames from the path.
        from humocon_hf.processing.video_processing_humocon import load_key_frames

        vfe = processor.video_processor
        try:
            load_key_frames(video, num_frames=vfe.num_frames, sampling_fps=vfe.sampling_fps,
                            decode_method=vfe.decode_method)
        except (ValueError, FileNotFoundError) as err:
            raise UserInputError(f"--video {video}: {err}") from err
        video_value = str(video)
    return motion_value, video_value


def system_messages(system_prompt: str | None) -> list[dict]:
    """The conversation's opening: no message for None (the chat template's default applies), else the system
    message, an empty one included (`""` keeps templates such as SmolLM2's from inserting their default)."""
    return [] if system_prompt is None else [{"role": "system", "content": system_prompt}]


def user_message(question: str, motion=None, video=None) -> dict:
    """A user turn in the training format (`chat_template.user_content`): media first, a newline, then the question."""
    from humocon_hf.processing.chat_template import user_content

    fps = None
    if isinstance(video, tuple):  # (frames, fps) arrays; else a file path: the processor decodes its key frames only
        video, fps = video
    return {"role": "user", "content": user_content([{"type": "text", "text": question}],
                                                    () if motion is None else (motion,),
                                                    () if video is None else (video,), fps)}


def build_conversation(row: Mapping, system_prompt: str | None = None) -> list[dict]:
    """The chat for one QA row in the processor's typed-content form: the row's motion and/or video, a newline, then
    its question (the first user turn), as training, `humocon ask` and the Space build it (`user_message`)."""
    question = row.get("question")
    if not isinstance(question, str) or not question:
        raise ValueError(f"row {row.get('id', '?')}: 'question' must be a non-empty string, got {question!r}")
    return system_messages(system_prompt) + [
        user_message(question, row.get("motion_path") or None, row.get("video_path") or None)
    ]


def chat_inputs(model: HuMoConForCausalLM, processor: MotionVideoProcessor, conversation: list[dict]) -> dict:
    """The model inputs of a conversation with the assistant's turn to come, on the model's device."""
    inputs = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")
    return {k: v.to(model.device) if hasattr(v, "to") else v for k, v in inputs.items()}


def question_text(conversation: list[dict]) -> str:
    """The text of a conversation's last user turn (its text items joined), where a question lists its options."""
    for message in reversed(conversation):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(item.get("text", "") for item in content or () if item.get("type") == "text")
    return ""


def end_token_ids(model: PreTrainedModel) -> list[int]:
    """The tokens that end an answer: the generation config's `eos_token_id` (an id or a list)."""
    eos = model.generation_config.eos_token_id
    return [] if eos is None else [int(t) for t in (eos if isinstance(eos, (list, tuple)) else [eos])]


def options_kwargs(model: PreTrainedModel, processor: MotionVideoProcessor, inputs, options) -> dict:
    """`generate` arguments keeping each row's answer to its options (`MotionVideoProcessor.answer_options_kwargs`);
    none where no row has options (so any model and processor pair answers free questions)."""
    if options is None or all(o is None for o in options):
        return {}
    return processor.answer_options_kwargs(inputs, options, end_token_ids=end_token_ids(model) or None)


def stream_answer(
    model: HuMoConForCausalLM, processor: MotionVideoProcessor, conversation: list[dict], max_new_tokens: int = 32,
    bf16: bool = False, options: Sequence[str] | None | str = "auto",
) -> Iterator[str]:
    """Generate the assistant's next turn greedily, yielding text as it is produced (TextIteratorStreamer); `bf16`:
    under bf16 autocast where the device has it, as the checkpoint was evaluated when it trained in bf16.
    `options`: the answers allowed (a list), None for a free answer, or "auto": the options the question lists
    (`listed_options`: "..., left or right?"), if any."""
    import torch
    from transformers import TextIteratorStreamer

    from humocon_hf.processing.answer_options import listed_options

    if isinstance(options, str):
        if options != "auto":
            raise ValueError(f"options must be a list of answers, None or 'auto', got {options!r}")
        options = listed_options(question_text(conversation))
    inputs = chat_inputs(model, processor, conversation)
    constraint = options_kwargs(model, processor, inputs, [list(options)] if options else None)
    streamer = TextIteratorStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
    errors: list[BaseException] = []

    def work():
        try:
            with torch.no_grad(), generation_autocast(model, bf16):
                model.generate(**inputs, **constraint, streamer=streamer, do_sample=False,
                               max_new_tokens=max_new_tokens, pad_token_id=processor.tokenizer.pad_token_id)
        except BaseException as err:  # surfaced in the caller's thread below
            errors.append(err)
            streamer.end()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    yield from streamer
    thread.join()
    if errors:
        raise errors[0]


def row_motion(row: Mapping):
    """The motion of a data set row: a (T, 22, 3) float32 array (`joints`) or a file path (`motion_path`)."""
    joints = row.get("joints")
    if joints is not None:
        return np.asarray(joints, dtype=np.float32)
    path = row.get("motion_path") or row.get("motion")
    return path if path else None


def generation_autocast(model: PreTrainedModel, enabled: bool):
    """bf16 autocast for generation when the stage trained in bf16 (same numerics as training)."""
    import torch

    from humocon_hf.precision import cpu_has_bf16

    device_type = model.device.type
    if not enabled or (device_type == "cpu" and not cpu_has_bf16()):
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16)


def qa_collator(processor: MotionVideoProcessor, model_args: ModelArguments) -> HuMoConQACollator:
    """The stage-2/3 collator for a recipe's `model` section: the prompt format training and answering share."""
    from humocon_hf.training.qa_collator import HuMoConQACollator

    return HuMoConQACollator(processor, max_length=model_args.max_length, system_prompt=model_args.system_prompt)


def make_answer_fn(model: HuMoConForCausalLM, processor: MotionVideoProcessor, model_args: ModelArguments,
                   max_new_tokens: int, with_motion: bool, progress=None, bf16: bool = False,
                   constrain_options: bool = True) -> AnswerFn:
    """Batched greedy answers (left padding) in exactly the training prompt format (`HuMoConQACollator`);
    `constrain_options`: a row that lists its ``options`` is answered with one of them."""
    import torch
    from tqdm.auto import tqdm

    collator = qa_collator(processor, model_args)
    tokenizer = processor.tokenizer
    bar = None
    if progress is not None:
        name, total, _ = progress
        bar = tqdm(total=total, desc=f"answering: {name}", unit="q")

    def qa_row(row: dict) -> dict:
        out = {"question": row["question"], "answer": row.get("answer") or "?"}
        if with_motion:
            out["motion"] = row_motion(row)
        return out

    def answer_fn(rows: list[dict]) -> list[str]:
        conversations = []
        for i, row in enumerate(rows):
            conv = collator.row_to_conversation(qa_row(row), i)
            conversations.append([m for m in conv if m["role"] != "assistant"])
        previous = tokenizer.padding_side
        tokenizer.padding_side = "left"
        try:
            inputs = processor.apply_chat_template(conversations, add_generation_prompt=True, tokenize=True,
                                                   return_tensors="pt", return_dict=True)
        finally:
            tokenizer.padding_side = previous
        options = [row.get("options") or None for row in rows] if constrain_options else None
        with torch.no_grad(), generation_autocast(model, bf16):
            out = model.generate(**inputs, **options_kwargs(model, processor, inputs, options), do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        texts = tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        if bar is not None:
            bar.update(len(rows))
        return [t.strip() for t in texts]

    # `evaluate_motion_qa` batches questions of similar prompt length together when the answer function says how
    # long a row's prompt is.
    answer_fn.approximate_length = lambda row: collator.approximate_length(qa_row(row))
    return answer_fn


def answer_fn_from_model(
    model: PreTrainedModel, processor: MotionVideoProcessor, *, max_new_tokens: int = 16,
    system_prompt: str | None = None, constrain_options: bool = True,
) -> AnswerFn:
    """Adapter: a generation model (e.g. `HuMoConForCausalLM`) plus its `MotionVideoProcessor` -> `answer_fn`.

    Each row becomes a chat (`build_conversation`), is processed with
    ``processor.apply_chat_template(..., add_generation_prompt=True, tokenize=True, return_dict=True)`` and answered
    by greedy `model.generate`; only the new tokens are decoded. Rows are generated one at a time, so no padding side
    can shift a prompt. With `constrain_options`, a row that lists its ``options`` is answered with one of them.
    """
    import torch

    def answer_fn(rows: list[dict]) -> list[str]:
        answers = []
        for row in rows:
            inputs = processor.apply_chat_template(
                build_conversation(row, system_prompt), add_generation_prompt=True, tokenize=True,
                return_tensors="pt", return_dict=True)
            device = getattr(model, "device", None)
            inputs = {k: (v.to(device) if device is not None and hasattr(v, "to") else v) for k, v in inputs.items()}
            options = [row["options"]] if constrain_options and row.get("options") else None
            with torch.no_grad():
                out = model.generate(**inputs, **options_kwargs(model, processor, inputs, options), do_sample=False,
                                     max_new_tokens=max_new_tokens)
            new_tokens = out[0, inputs["input_ids"].shape[1]:]
            answers.append(processor.tokenizer.decode(new_tokens, skip_special_tokens=True).strip())
        return answers

    return answer_fn


def time_span(start: int, end: int, fps: float) -> str:
    """`start-end s` of frames `[start, end)` with the decimals that tell frames apart at `fps` (0.1 s rounding
    printed a 1-frame segment at 20 fps as `6.8- 6.8 s`); a single frame is one time."""
    decimals = max(1, math.ceil(math.log10(fps))) if fps > 0 else 2
    if end - start <= 1:
        return f"{start / fps:.{decimals}f} s"
    return f"{start / fps:.{decimals}f}-{end / fps:.{decimals}f} s"


def concept_lines(model: HuMoConForCausalLM, processor: MotionVideoProcessor, joints) -> list[str]:
    """The motion's concept segments with times and, when the checkpoint has them, the concepts in words
    (`humocon ask --concepts`, the Space)."""
    from humocon_hf.concepts import concept_labels, motion_concepts, segment_words

    fe = processor.motion_feature_extractor
    result = motion_concepts(model.motion_encoder, fe, [joints])[0]
    segments = result["segments"]
    labels = concept_labels(getattr(model.config.motion_config, "concept_descriptions", None))
    # the concept's words, with what the concept leaves open ("one arm raised") read from the segment itself
    encoded = max((int(end) for _, end, _ in segments), default=0)
    said = segment_words(np.asarray(joints)[:encoded], segments, labels, fe.fps)
    lines = ["Motion concepts (time, concept id" + (", what it means):" if labels else "):")]
    spans = [time_span(start, end, fe.fps) for start, end, _ in segments]
    width = max(map(len, spans), default=0)
    for span, (_, _, concept), text in zip(spans, segments, said):
        words = f"  {text}" if text is not None else ""
        lines.append(f"  {span:>{width}}  #{concept:<4d}{words}".rstrip())
    if not labels:
        lines.append("  (this checkpoint stores no concept descriptions; `humocon demo` checkpoints do)")
    return lines


__all__ = [
    "MOTION_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "CHAT_DEFAULTS",
    "write_chat_defaults",
    "UserInputError",
    "answer_fn_from_model",
    "build_conversation",
    "check_media",
    "concept_lines",
    "time_span",
    "load_checkpoint",
    "load_media",
    "make_answer_fn",
    "options_kwargs",
    "question_text",
    "end_token_ids",
    "qa_collator",
    "row_motion",
    "stream_answer",
    "chat_inputs",
    "system_messages",
    "user_message",
]
