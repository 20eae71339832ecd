"""What every real-data loader shares: the two row schemas, the missing-media policy and file checks.

Two schemas:

* **QA** (`QA_FEATURES`; BABEL-QA, ActivityNet-QA, custom QA): `id`, `question`, `answer`,
  `motion_path` (or None), `video_path` (or None), `query_type`, `relation_type` (None when not
  applicable) and `conversations` = ``[{"role": "user"|"assistant"|"system", "content": str}, ...]``.
  Conversation contents are plain text: the `<motion>` / `<video>` placeholders are added by the
  processor or collator from `motion_path` / `video_path` (a user's own text that already holds them is
  kept verbatim). Loaders add their own extra columns (e.g. BABEL-QA `program`, `babel_id`).
  `select_qa_columns` keeps only the shared columns so QA sets can be concatenated.
* **Captions** (HumanML3D, KIT-ML, CMU, Bandai Namco): `id`, `motion_path`, `caption` (the first), `captions` (all).

Media (motion / video files) are joined by path, not loaded: the processor reads them when a batch is
built. When a media folder is given, examples whose file is missing are reported (a logged warning with
the count and the first ids, and a `MissingMediaReport` with ``return_report=True``) and, by
``on_missing``, dropped (default), kept with a None path, or turned into an error.

The loaders themselves live one module per data set family (`babel_qa`, `text_motion`, `real_mocap`,
`activitynet_qa`, `custom_qa`); `humocon_hf.data.loaders` re-exports them all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np

# One logger for all the loaders, under the name they had when they were one module (`humocon_hf.data.loaders`),
# so a user's logging configuration for it keeps working.
logger = logging.getLogger("humocon_hf.data.loaders")

__all__ = ["CAPTION_FEATURES", "QA_FEATURES", "MissingMediaReport", "select_qa_columns"]

_CONVERSATION = datasets.List({"role": datasets.Value("string"), "content": datasets.Value("string")})

QA_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "motion_path": datasets.Value("string"),
        "video_path": datasets.Value("string"),
        "query_type": datasets.Value("string"),
        "relation_type": datasets.Value("string"),
        "conversations": _CONVERSATION,
    }
)

CAPTION_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "motion_path": datasets.Value("string"),
        "caption": datasets.Value("string"),
        "captions": datasets.List(datasets.Value("string")),
    }
)

_ON_MISSING = ("drop", "keep", "raise")


@dataclass
class MissingMediaReport:
    """Examples whose motion / video file was not found in the folder the user gave."""

    dataset: str
    kind: str  # "motion" or "video"
    total: int
    missing_ids: list[str] = field(default_factory=list)
    searched: str = ""

    @property
    def count(self) -> int:
        return len(self.missing_ids)

    def __str__(self) -> str:
        head = ", ".join(self.missing_ids[:10]) + (" ..." if self.count > 10 else "")
        return (
            f"{self.dataset}: {self.count} of {self.total} examples have no {self.kind} file in {self.searched}"
            + (f" (first ids: {head})" if self.count else "")
        )


def _check_on_missing(on_missing: str) -> None:
    if on_missing not in _ON_MISSING:
        raise ValueError(f"on_missing must be one of {_ON_MISSING}, got {on_missing!r}")


def _apply_missing_policy(
    rows: list[dict], path_key: str, report: MissingMediaReport, on_missing: str
) -> list[dict]:
    if report.count == 0:
        return rows
    if on_missing == "raise":
        raise FileNotFoundError(str(report))
    logger.warning("%s; %s", report, "dropping them" if on_missing == "drop" else "keeping them with no path")
    if on_missing == "drop":
        return [r for r in rows if r[path_key] is not None]
    return rows


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def _index_files(folder: Path, extensions: Sequence[str]) -> tuple[dict[str, Path], dict[str, Path]]:
    """Map each file under `folder` by relative path without extension and by stem (first one wins)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: media folder not found")
    by_rel: dict[str, Path] = {}
    by_stem: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in extensions:
            rel = path.relative_to(folder).with_suffix("").as_posix()
            by_rel.setdefault(rel, path)
            by_stem.setdefault(path.stem, path)
    return by_rel, by_stem


def _npy_shape(path: Path) -> tuple[int, ...]:
    """Shape of a .npy file from its header (no data read)."""
    try:
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
    except Exception as err:  # corrupt / truncated / not a .npy
        raise ValueError(f"{path}: cannot read as a .npy array ({err})") from err


def _check_motion_npy(path: Path, allowed_dims: Sequence[tuple[int, ...]]) -> int:
    """Check a motion .npy is (T, *dims) with T > 0 for one of the allowed trailing dims; return T."""
    shape = _npy_shape(path)
    if len(shape) < 2 or shape[0] == 0 or tuple(shape[1:]) not in {tuple(d) for d in allowed_dims}:
        expected = " or ".join("(T, " + ", ".join(map(str, d)) + ")" for d in allowed_dims)
        raise ValueError(f"{path}: motion array has shape {shape}, expected {expected} with T > 0")
    return int(shape[0])


def _from_rows(rows: list[dict], features: datasets.Features) -> datasets.Dataset:
    """`Dataset.from_list` that also accepts zero rows (e.g. a split with no motion available)."""
    if not rows:
        return datasets.Dataset.from_dict({k: [] for k in features}, features=features)
    return datasets.Dataset.from_list(rows, features=features)


def _qa_conversation(question: str, answer: str | None) -> list[dict]:
    conv = [{"role": "user", "content": question}]
    if answer is not None:
        conv.append({"role": "assistant", "content": answer})
    return conv


def select_qa_columns(dataset: datasets.Dataset | datasets.DatasetDict):
    """Keep only the shared QA columns (`QA_FEATURES`), e.g. before `datasets.concatenate_datasets`."""
    keep = list(QA_FEATURES)
    if isinstance(dataset, datasets.DatasetDict):
        return datasets.DatasetDict({k: select_qa_columns(v) for k, v in dataset.items()})
    return dataset.select_columns(keep).cast(QA_FEATURES)
