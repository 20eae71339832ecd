"""[`HuMoConQACollator`]: dataset rows (a motion and/or a video with a question/answer, a caption or a conversation)
to a padded, labelled batch through the `MotionVideoProcessor`'s chat template. Shared by stage 2
([`ModalityTranslationTrainer`]), stage 3 ([`InstructionTuningTrainer`]), `humocon_hf.finetune` and the answering
code in `humocon_hf.inference`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from humocon_hf.processing.chat_template import user_content, video_item

if TYPE_CHECKING:
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor

__all__ = ["DEFAULT_PROMPTS", "HuMoConQACollator", "SharedMotionPromptCollator", "group_rows_by_motion"]

DEFAULT_PROMPTS = {
    "motion": "Describe the motion.",
    "video": "Describe what the person does in the video.",
    "both": "Describe the motion shown in the video and the motion sequence.",
}

_PLACEHOLDER_RE = re.compile(r"(<motion>|<video>)")


class HuMoConQACollator:
    """Turn dataset rows into a padded batch for [`HuMoConForCausalLM`] through the processor's chat template.

    A row is a mapping with

    * `motion` (path, (T, 22, 3) array, `MotionClip`, a list of those, or None) and/or `video` (path, uint8
      (N, H, W, 3) array, a list, or None); `motion_path` / `video_path` (the schema of the
      `humocon_hf.data` loaders) are read when `motion` / `video` are absent;
    * either `question` + `answer` (or `caption`: then the question defaults to a "describe" prompt), or
      `conversations`: a list of `{"role": "user" | "assistant" | "system", "content": str | list}` messages
      (ShareGPT `{"from": "human" | "gpt", "value": str}` is accepted too).

    In string content, `<motion>` / `<video>` mark where the row's motions / videos go (in order); without
    markers they are put in front of the first user message. Labels keep only the assistant answers.

    Args:
        processor: a `MotionVideoProcessor`.
        max_length: optional truncation length (the processor refuses to cut placeholder tokens).
        system_prompt: optional system message put in front of every conversation (`""`: an empty one, which
            keeps chat templates such as SmolLM2's from inserting their default system prompt).
        column names: override the defaults above.
    """

    def __init__(
        self,
        processor: MotionVideoProcessor,
        max_length: int | None = None,
        system_prompt: str | None = None,
        motion_column: str = "motion",
        video_column: str = "video",
        question_column: str = "question",
        answer_column: str = "answer",
        caption_column: str = "caption",
        conversations_column: str = "conversations",
        video_fps_column: str = "video_fps",
    ):
        self.processor = processor
        self.max_length = max_length
        self.system_prompt = system_prompt
        self.motion_column = motion_column
        self.video_column = video_column
        self.question_column = question_column
        self.answer_column = answer_column
        self.caption_column = caption_column
        self.conversations_column = conversations_column
        self.video_fps_column = video_fps_column

    # The placeholder strings the processor uses (they can be customised there).
    @property
    def _tokens(self) -> tuple[str, str]:
        return getattr(self.processor, "motion_token", "<motion>"), getattr(
            self.processor, "video_token", "<video>"
        )

    @staticmethod
    def _media_list(value) -> list:
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return [v for v in value if v is not None]
        return [value]

    def row_to_conversation(self, row: Mapping[str, Any], index: int = 0) -> list[dict]:
        """One dataset row -> one conversation with typed content items."""
        if not isinstance(row, Mapping):
            raise TypeError(
                f"row {index}: expected a mapping (a datasets row), got {type(row).__name__}"
            )
        motions = self._media_list(
            _first_present(row, self.motion_column, f"{self.motion_column}_path")
        )
        videos = self._media_list(
            _first_present(row, self.video_column, f"{self.video_column}_path")
        )
        fps = row.get(self.video_fps_column)

        conversation = row.get(self.conversations_column)
        if conversation is not None:
            messages = [
                self._normalize_message(m, index, i) for i, m in enumerate(conversation)
            ]
            if not any(m["role"] == "assistant" for m in messages):
                raise ValueError(
                    f"row {index}: `{self.conversations_column}` holds no assistant answer to learn"
                )
        else:
            answer = row.get(self.answer_column)
            question = row.get(self.question_column)
            if answer is None and row.get(self.caption_column) is not None:
                answer = row[self.caption_column]
            if answer is None or (isinstance(answer, str) and not answer.strip()):
                raise ValueError(
                    f"row {index}: needs `{self.answer_column}` (or `{self.caption_column}`) or "
                    f"`{self.conversations_column}`"
                )
            if question is None:
                key = (
                    "both" if motions and videos else ("video" if videos else "motion")
                )
                question = DEFAULT_PROMPTS[key]
            messages = [
                {"role": "user", "content": str(question)},
                {"role": "assistant", "content": str(answer)},
            ]
        if self.system_prompt is not None and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return self._attach_media(messages, motions, videos, fps, index)

    @staticmethod
    def _normalize_message(message, index: int, position: int) -> dict:
        # here, not at the top: `humocon_hf.data` imports `datasets`, which importing the collator does not need
        from humocon_hf.data.custom_qa import ROLE_ALIASES

        if not isinstance(message, Mapping):
            raise TypeError(
                f"row {index}, message {position}: expected a dict, got {type(message).__name__}"
            )
        if "role" in message and "content" in message:
            role, content = message["role"], message["content"]
        elif "from" in message and "value" in message:
            role, content = message["from"], message["value"]
        else:
            raise ValueError(
                f"row {index}, message {position}: expected keys role/content (or from/value), got {sorted(message)}"
            )
        if not isinstance(role, str) or role.lower() not in ROLE_ALIASES:
            raise ValueError(f"row {index}, message {position}: unknown role {role!r}")
        return {"role": ROLE_ALIASES[role.lower()], "content": content}

    def _attach_media(
        self, messages: list[dict], motions: list, videos: list, fps, index: int
    ) -> list[dict]:
        """Replace `<motion>` / `<video>` markers in string content by typed items carrying the row's media."""
        motion_token, video_token = self._tokens
        motion_iter, video_iter = iter(motions), iter(videos)
        used = {"motion": 0, "video": 0}
        out = []
        for message in messages:
            content = message["content"]
            if isinstance(content, str):
                items = []
                for piece in re.split(
                    f"({re.escape(motion_token)}|{re.escape(video_token)})", content
                ):
                    if piece == motion_token:
                        media = next(motion_iter, None)
                        if media is None:
                            raise ValueError(
                                f"row {index}: more {motion_token} markers than motions ({len(motions)})"
                            )
                        items.append({"type": "motion", "motion": media})
                        used["motion"] += 1
                    elif piece == video_token:
                        media = next(video_iter, None)
                        if media is None:
                            raise ValueError(
                                f"row {index}: more {video_token} markers than videos ({len(videos)})"
                            )
                        items.append(video_item(media, fps))
                        used["video"] += 1
                    elif piece:
                        items.append({"type": "text", "text": piece})
            else:
                items = list(content)
                for item in items:
                    if isinstance(item, Mapping) and item.get("type") in used:
                        used[item["type"]] += 1
            out.append({"role": message["role"], "content": items})

        # Media without markers go in front of the first user message.
        leftover_motions, leftover_videos = list(motion_iter), list(video_iter)
        if leftover_motions or leftover_videos:
            if used["motion"] or used["video"]:
                raise ValueError(
                    f"row {index}: {len(leftover_motions) + len(leftover_videos)} motion/video input(s) have no {motion_token}/{video_token} marker "
                    "while others do: mark all of them or none"
                )
            first_user = next((m for m in out if m["role"] == "user"), None)
            if first_user is None:
                raise ValueError(
                    f"row {index}: the conversation has no user message to attach the motion/video to"
                )
            first_user["content"] = user_content(first_user["content"], leftover_motions, leftover_videos, fps)
        return out

    def approximate_length(self, row: Mapping[str, Any], index: int = 0) -> int:
        """About how many tokens `row` becomes, without rendering the chat or reading media: the tokens of its text
        plus its placeholders (a motion array: ceil(min(frames, max_frames) / stride); a motion file: the most a motion
        can take; a video: the processor's tokens per video). What length-grouped batching sorts by."""
        text, motions, videos = [], 0, 0
        for message in self.row_to_conversation(row, index):
            for item in message["content"]:
                if item["type"] == "text":
                    text.append(item["text"])
                elif item["type"] == "motion":
                    motions += self._motion_tokens(item["motion"])
                elif item["type"] == "video":
                    videos += int(self.processor.num_video_tokens)
        return len(self.processor.tokenizer("".join(text), add_special_tokens=False)["input_ids"]) + motions + videos

    def _motion_tokens(self, motion) -> int:
        extractor = self.processor.motion_feature_extractor
        frames = len(motion) if hasattr(motion, "__len__") and not isinstance(motion, (str, bytes)) else None
        frames = extractor.max_frames if frames is None else min(frames, extractor.max_frames or frames)
        return self.processor.num_motion_tokens(frames)

    def __call__(self, rows: Sequence[Mapping[str, Any]]):
        if len(rows) == 0:
            raise ValueError("HuMoConQACollator got an empty batch")
        conversations = [self.row_to_conversation(row, i) for i, row in enumerate(rows)]
        kwargs = {}
        if self.max_length is not None:
            kwargs.update(truncation=True, max_length=self.max_length)
        batch = self.processor.apply_chat_template(
            conversations,
            tokenize=True,
            return_dict=True,
            return_labels=True,
            return_tensors="pt",
            **kwargs,
        )
        if "labels" not in batch:
            raise ValueError(
                "the processor returned no labels; MotionVideoProcessor must support return_labels=True"
            )
        return batch


def _first_present(row: Mapping[str, Any], *keys: str):
    for key in keys:
        if row.get(key) is not None:
            return row[key]
    return None




def group_rows_by_motion(rows: Sequence[Mapping[str, Any]], motion_column: str = "motion") -> list[dict]:
    """Rows about the same motion (the same file, or equal joint arrays) as ``{"rows": [...]}`` groups, in the order
    their motions first appear: the items of a [`SharedMotionPromptCollator`] data set."""
    import hashlib

    import numpy as np

    groups: dict[str, list] = {}
    for i, row in enumerate(rows):
        motion = row.get(motion_column)
        if motion is None:
            raise ValueError(f"row {i} has no {motion_column!r}: only questions about a motion share its prompt")
        key = (f"path:{motion}" if isinstance(motion, (str, bytes)) or hasattr(motion, "__fspath__")
               else "array:" + hashlib.sha1(np.ascontiguousarray(motion, dtype=np.float32).tobytes()).hexdigest())
        groups.setdefault(key, []).append(row)
    return [{"rows": members} for members in groups.values()]


class SharedMotionPromptCollator:
    """Batches in which the questions about one motion share one copy of its prompt (stage 3, `tune.
    share_motion_prompt`).

    An item is a group ``{"rows": [row, ...]}`` of rows about one motion (`group_rows_by_motion`). Every row is
    tokenised exactly as [`HuMoConQACollator`] tokenises it alone; the tokens up to and including the motion's
    placeholders (system message, user header, the motion) are the same for the rows of a group and are kept once,
    followed by each row's own rest (its question and answer). A 4D attention mask lets a token see the shared prompt
    and the earlier tokens of its own row only, and the position ids continue from the prompt as in the row alone, so
    every answer is computed as in its own sequence, on fewer tokens (the 3 questions of a demo motion: ~35% fewer).

    Returns `input_ids`, `labels`, `position_ids` `(groups, length)`, `attention_mask` `(groups, 1, length, length)`
    (0 where attending, the float32 minimum elsewhere) and one motion clip per group (`motion_values`,
    `motion_attention_mask`).
    """

    def __init__(self, collator: HuMoConQACollator):
        self.collator = collator

    def __call__(self, groups: Sequence[Mapping[str, Any]]):
        import torch

        if len(groups) == 0:
            raise ValueError("SharedMotionPromptCollator got an empty batch")
        rows, spans = [], []  # spans: each group's rows in the flat batch
        for g, group in enumerate(groups):
            members = group.get("rows") if isinstance(group, Mapping) else None
            if not members:
                raise ValueError(f"item {g}: expected a group {{'rows': [row, ...]}} of questions about one motion")
            spans.append(range(len(rows), len(rows) + len(members)))
            rows += list(members)
        batch = self.collator(rows)
        if batch.get("pixel_values_videos") is not None:
            raise ValueError("SharedMotionPromptCollator packs motion questions only; these rows have videos")
        processor = self.collator.processor
        motion_id = processor.tokenizer.convert_tokens_to_ids(getattr(processor, "motion_token", "<motion>"))
        valid = batch["attention_mask"].bool()
        packed = []  # per group: (token ids, labels, positions, block of each token: 0 prompt, k the k-th row)
        for g, members in enumerate(spans):
            ids_parts, label_parts, pos_parts, block_parts = [], [], [], []
            prompt = None
            for k, i in enumerate(members, start=1):
                ids, labels = batch["input_ids"][i][valid[i]], batch["labels"][i][valid[i]]
                motion_at = (ids == motion_id).nonzero()
                if len(motion_at) == 0:
                    raise ValueError(f"item {g}, row {k - 1}: no motion placeholder in its tokens")
                cut = int(motion_at[-1]) + 1
                if prompt is None:
                    prompt = ids[:cut]
                    ids_parts.append(prompt)
                    label_parts.append(labels[:cut])
                    pos_parts.append(torch.arange(cut))
                    block_parts.append(torch.zeros(cut, dtype=torch.long))
                elif not torch.equal(ids[:cut], prompt):
                    raise ValueError(f"item {g}, row {k - 1}: its prompt up to the motion differs from the group's "
                                     "first row (a group shares one motion and one system message)")
                ids_parts.append(ids[cut:])
                label_parts.append(labels[cut:])
                pos_parts.append(torch.arange(cut, len(ids)))
                block_parts.append(torch.full((len(ids) - cut,), k, dtype=torch.long))
            packed.append(tuple(torch.cat(parts) for parts in (ids_parts, label_parts, pos_parts, block_parts)))
        length = max(len(p[0]) for p in packed)
        pad_id = processor.tokenizer.pad_token_id
        pad_id = 0 if pad_id is None else pad_id
        n = len(groups)
        input_ids = torch.full((n, length), pad_id, dtype=batch["input_ids"].dtype)
        labels = torch.full((n, length), -100, dtype=batch["labels"].dtype)
        position_ids = torch.zeros((n, length), dtype=torch.long)
        block = torch.full((n, length), -1, dtype=torch.long)  # -1: padding
        for g, (ids, lab, pos, blk) in enumerate(packed):
            input_ids[g, : len(ids)], labels[g, : len(ids)] = ids, lab
            position_ids[g, : len(ids)], block[g, : len(ids)] = pos, blk
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        same = (block[:, :, None] == block[:, None, :]) & (block[:, :, None] >= 0)
        allowed = causal & (same | (block[:, None, :] == 0))
        allowed |= torch.eye(length, dtype=torch.bool)  # padding attends to itself: no row of -inf
        mask = torch.zeros((n, 1, length, length), dtype=torch.float32)
        mask.masked_fill_(~allowed[:, None], torch.finfo(torch.float32).min)
        out = {"input_ids": input_ids, "labels": labels, "position_ids": position_ids, "attention_mask": mask}
        for key in ("motion_values", "motion_attention_mask"):
            if batch.get(key) is not None:
                out[key] = batch[key][[span.start for span in spans]]
        return out
