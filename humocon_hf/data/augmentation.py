"""Mirror augmentation for motion-language data (HumanML3D's "M" samples).

A mirrored motion is as plausible as the original, and its labels follow by swapping the words that name a
side: the left hand becomes the right hand, "moves to the left" becomes "moves to the right". Adding the
mirror twin of every training motion balances the left/right answers exactly, so a model can no longer
answer sided questions from the text prior and has to read the side from the motion.

`mirror_joints` (in `humocon_hf.processing.smpl22`) mirrors the skeleton, `mirror_text` the words, and
`mirror_qa_split` a whole QA / caption split of the data sets in this package.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from humocon_hf.processing.smpl22 import mirror_joints

__all__ = ["mirror_joints", "mirror_qa_split", "mirror_segments", "mirror_text"]

_SIDE_WORDS = {
    "left": "right", "right": "left",
    "clockwise": "counterclockwise", "counterclockwise": "clockwise", "anticlockwise": "clockwise",
    "counter-clockwise": "clockwise", "anti-clockwise": "clockwise",
}  # fmt: skip
# Longest first so that "counterclockwise" is not read as "counter" + "clockwise".
_SIDE_RE = re.compile(
    r"(?<![\w-])(" + "|".join(sorted(map(re.escape, _SIDE_WORDS), key=len, reverse=True)) + r")(?![\w-])",
    re.IGNORECASE,
)


def _same_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def mirror_text(text: str | None) -> str | None:
    """Swap the words that name a side ("left" <-> "right", "clockwise" <-> "counterclockwise"), keeping case.

    >>> mirror_text("Left hand, then turns to the RIGHT")
    'Right hand, then turns to the LEFT'
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError(f"mirror_text: expected a string, got {type(text).__name__}")
    return _SIDE_RE.sub(lambda m: _same_case(_SIDE_WORDS[m.group(0).lower()], m.group(0)), text)


def mirror_segments(segments: list[dict] | None) -> list[dict] | None:
    """Segment labels (``{action, direction, body_part, start, end}``) of the mirrored motion."""
    if segments is None:
        return None
    return [{k: mirror_text(v) if isinstance(v, str) else v for k, v in seg.items()} for seg in segments]


def _mirror_value(column: str, value):
    if column in ("question", "answer", "caption"):
        return mirror_text(value)
    if column == "program":
        return [mirror_text(step) for step in value]
    if column == "conversations":
        return [{**turn, "content": mirror_text(turn["content"])} for turn in value]
    if column == "segments":
        return mirror_segments(value)
    return value


def mirror_qa_split(split, motions_dir: str | os.PathLike | None = None, prefix: str = "M"):
    """The mirror twin of every row of a QA or caption split, as a new `datasets.Dataset` with the same columns.

    Text columns (question, answer, caption, program, conversations, segments) get `mirror_text`; ids get
    `prefix`. The motion is mirrored in place when the rows hold ``joints``; otherwise each distinct
    ``motion_path`` is loaded, mirrored and saved once as ``<motions_dir>/<prefix><name>.npy``. Rows with a video
    are refused: a mirrored motion would no longer match its video.

    Args:
        split: a `datasets.Dataset` with `motion_path` (SMPL-22 ``.npy``) or `joints` columns.
        motions_dir: where mirrored motion files go (required when the rows reference files).
        prefix: prepended to `id` / `motion_id` and to the mirrored files' names.
    """
    import datasets

    from humocon_hf.processing.motion_io import load_motion

    columns = split.column_names
    has_joints = "joints" in columns
    if not has_joints and "motion_path" not in columns:
        raise ValueError(f"mirror_qa_split: the split needs a 'motion_path' or 'joints' column, has {columns}")
    if not has_joints and motions_dir is None:
        raise ValueError("mirror_qa_split: the rows reference motion files; pass motions_dir for the mirrored ones")
    if "video_path" in columns and any(v for v in split["video_path"]):
        raise ValueError("mirror_qa_split: rows with a video_path cannot be mirrored (the video would not match)")
    out_dir = Path(motions_dir) if motions_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    mirrored_paths: dict[str, str] = {}

    def mirror_row(row: dict) -> dict:
        new = {c: _mirror_value(c, row[c]) for c in columns}
        for key in ("id", "motion_id"):
            if key in new and new[key] is not None:
                new[key] = f"{prefix}{new[key]}"
        if has_joints:
            new["joints"] = mirror_joints(np.asarray(row["joints"], dtype=np.float32))
        src = row.get("motion_path")
        if src and out_dir is None:
            new["motion_path"] = None  # the rows carry the mirrored joints; there is no mirrored file
        elif src:
            if src not in mirrored_paths:  # questions share motions: mirror and write each file once
                dst = out_dir / f"{prefix}{Path(src).stem}.npy"
                joints = new["joints"] if has_joints else mirror_joints(load_motion(src, fps=None).joints)
                tmp = dst.with_suffix(".tmp.npy")
                np.save(tmp, joints)
                os.replace(tmp, dst)
                mirrored_paths[src] = str(dst)
            new["motion_path"] = mirrored_paths[src]
        return new

    rows = [mirror_row(row) for row in split]
    return datasets.Dataset.from_list(rows, features=split.features) if rows else split.select([])
