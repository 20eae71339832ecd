"""A user's own motion / video QA data (JSON / JSON lines / a `datasets` data set) in the QA schema, and the
conversation-role table (`ROLE_ALIASES`) the loaders and the training collator share."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import datasets

from humocon_hf.data.loader_common import (
    QA_FEATURES,
    MissingMediaReport,
    _check_on_missing,
    _from_rows,
    _qa_conversation,
    _read_json,
    logger,
)

__all__ = ["ROLE_ALIASES", "load_custom_qa"]

# Conversation roles as data sets spell them (ShareGPT's human / gpt, Gemini's model...) -> the chat template's. The
# one table for the loaders and the training collator.
ROLE_ALIASES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
                "model": "assistant", "bot": "assistant", "system": "system"}


def _normalize_conversation(conv: Any, where: str) -> list[dict]:
    if not isinstance(conv, list) or not conv:
        raise ValueError(f"{where}: 'conversations' must be a non-empty list of messages")
    out = []
    for j, msg in enumerate(conv):
        if not isinstance(msg, Mapping):
            raise ValueError(f"{where}: message {j} must be an object with role/content, got {msg!r}")
        role = msg.get("role", msg.get("from"))
        content = msg.get("content", msg.get("value"))
        if not isinstance(role, str) or role.lower() not in ROLE_ALIASES:
            raise ValueError(f"{where}: message {j} has role {role!r}; expected user / assistant / system")
        if not isinstance(content, str):
            raise ValueError(f"{where}: message {j} content must be a string, got {type(content).__name__}")
        out.append({"role": ROLE_ALIASES[role.lower()], "content": content})
    if not any(m["role"] == "user" for m in out):
        raise ValueError(f"{where}: conversation has no user message")
    return out


def _media_path(value: Any, name: str, where: str, base_dir: Path | None) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, Mapping) and isinstance(value.get("path"), str):
        value = value["path"]
    if not isinstance(value, str):
        raise ValueError(f"{where}: '{name}' must be a file path string, got {type(value).__name__}")
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return str(path)


def _normalize_custom_row(row: Mapping, index: int, where: str, base_dir: Path | None) -> dict:
    where = f"{where}: record {index}"
    if not isinstance(row, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(row).__name__}")
    motion = _media_path(row.get("motion", row.get("motion_path")), "motion", where, base_dir)
    video = _media_path(row.get("video", row.get("video_path")), "video", where, base_dir)
    if motion is None and video is None:
        raise ValueError(f"{where}: needs a 'motion' and/or 'video' path")
    conv = row.get("conversations")
    question, answer = row.get("question"), row.get("answer")
    if conv is not None:
        conv = _normalize_conversation(conv, where)
        if question is None:
            question = next(m["content"] for m in conv if m["role"] == "user")
        if answer is None:
            first_user = next(i for i, m in enumerate(conv) if m["role"] == "user")
            answer = next((m["content"] for m in conv[first_user:] if m["role"] == "assistant"), None)
    else:
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"{where}: needs 'question' (a non-empty string) or 'conversations'")
        if answer is not None and not isinstance(answer, str):
            raise ValueError(f"{where}: 'answer' must be a string, got {type(answer).__name__}")
        conv = _qa_conversation(question, answer)
    if not isinstance(question, str) or (answer is not None and not isinstance(answer, str)):
        raise ValueError(f"{where}: 'question' / 'answer' must be strings")
    rid = row.get("id", row.get("question_id", index))
    return {
        "id": str(rid),
        "question": question,
        "answer": answer,
        "motion_path": motion,
        "video_path": video,
        "query_type": None if row.get("query_type") is None else str(row["query_type"]),
        "relation_type": None if row.get("relation_type") is None else str(row["relation_type"]),
        "conversations": conv,
    }


def _read_json_records(path: Path) -> list:
    if path.suffix.lower() == ".jsonl":
        records = []
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}: line {line_no} is not valid JSON ({err.msg})") from err
        return records
    data = _read_json(path)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records (or JSON lines in a .jsonl file)")
    return data


def load_custom_qa(
    source: str | Path | datasets.Dataset | datasets.DatasetDict,
    split: str | None = None,
    *,
    base_dir: str | Path | None = None,
    check_files: bool = True,
    on_missing: str = "drop",
    return_report: bool = False,
):
    """A user's motion / video QA data in one schema (`QA_FEATURES`).

    `source`: a `.jsonl` / `.json` file, a `datasets.Dataset` / `DatasetDict`, or anything
    `datasets.load_dataset` takes (a Hub repo id or a local data set folder; `split` is passed on).
    Each record has `motion` / `motion_path` and/or `video` / `video_path`, and either `question` +
    `answer` or multi-turn `conversations` (``[{"role", "content"}]``, ShareGPT ``{"from", "value"}`` with
    human / gpt also accepted). Relative media paths resolve against `base_dir` (default: the JSON file's
    folder). Records whose files do not exist follow `on_missing` when `check_files`.
    """
    _check_on_missing(on_missing)
    if isinstance(source, datasets.DatasetDict):
        parts = {k: load_custom_qa(v, base_dir=base_dir, check_files=check_files, on_missing=on_missing,
                                   return_report=True) for k, v in source.items()}
        dd = datasets.DatasetDict({k: v[0] for k, v in parts.items()})
        if not return_report:
            return dd
        report = MissingMediaReport("custom QA", "motion/video", sum(r.total for _, r in parts.values()),
                                    [i for _, r in parts.values() for i in r.missing_ids], str(base_dir or ""))
        return dd, report
    base = Path(base_dir) if base_dir is not None else None
    if isinstance(source, datasets.Dataset):
        records, where = list(source), "dataset"
    else:
        path = Path(source)
        if path.is_file() and path.suffix.lower() in (".json", ".jsonl"):
            records, where = _read_json_records(path), str(path)
            base = base or path.parent
        else:
            loaded = datasets.load_dataset(str(source), split=split)
            if base_dir is None and path.is_dir():
                base_dir = path  # relative media paths in a local data set folder are relative to it
            return load_custom_qa(loaded, base_dir=base_dir, check_files=check_files, on_missing=on_missing,
                                  return_report=return_report)
    rows = [_normalize_custom_row(r, i, where, base) for i, r in enumerate(records)]
    if not rows:
        raise ValueError(f"{where}: no records")
    report = MissingMediaReport("custom QA", "motion/video", len(rows), [], str(base or ""))
    if check_files:
        def has_files(r: dict) -> bool:
            return all(p is None or Path(p).is_file() for p in (r["motion_path"], r["video_path"]))

        bad = [r for r in rows if not has_files(r)]
        report.missing_ids = [r["id"] for r in bad]
        if bad:
            if on_missing == "raise":
                raise FileNotFoundError(str(report) + f"; e.g. {bad[0]['motion_path'] or bad[0]['video_path']}")
            logger.warning("%s", report)
            if on_missing == "drop":
                rows = [r for r in rows if has_files(r)]
            else:
                for r in bad:
                    for key in ("motion_path", "video_path"):
                        if r[key] is not None and not Path(r[key]).is_file():
                            r[key] = None
    ds = _from_rows(rows, features=QA_FEATURES)
    return (ds, report) if return_report else ds
