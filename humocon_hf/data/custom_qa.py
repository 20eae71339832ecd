"""A user's own motion / video QA data (JSON / JSON lines / a `datasets` data set) in the QA schema, and the
conversation-role table (`ROLE_ALIASES`) the loaders and the training collator share."""

from __future__ import annotations

import itertools
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
        if not content.strip() and ROLE_ALIASES[role.lower()] != "system":  # an empty answer trains on nothing
            raise ValueError(f"{where}: message {j} ({role}) is empty; expected text")
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


def _normalize_custom_row(row: Mapping, index: int, where: str, base_dir: Path | None,
                          require_answer: bool = False) -> dict:
    """One record in the QA schema; `where` names it in errors (the file and its line or record number)."""
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
    # A blank answer would train with loss 0 and a blank question teaches nothing: both are refused, never skipped.
    if not question.strip():
        raise ValueError(f"{where}: 'question' is empty; expected the question's text")
    if answer is not None and not answer.strip():
        raise ValueError(f"{where}: 'answer' is empty; expected the answer's text")
    if require_answer and answer is None:
        raise ValueError(f"{where}: has no answer ('answer' or an assistant message) to train on")
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


# Bounds on a user's QA file, checked before it is read whole: a line of JSON lines is read with a cap (a 100 MB line
# is refused after 1 MiB, not loaded), and the file as a whole at most 256 MiB (~1M records at 200 bytes each).
MAX_LINE_BYTES = 1 << 20
MAX_FILE_BYTES = 256 << 20


class _DuplicateKey(ValueError):
    def __init__(self, key: str, line: int | None = None):
        super().__init__(key)
        self.key, self.line = key, line


def _no_duplicate_keys(pairs: list) -> dict:
    """`object_pairs_hook`: a key given twice is refused (json keeps the last one silently)."""
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def _duplicate_key_line(text: str) -> int | None:
    """The line of the object that repeats a key: parsed again (only after a duplicate was found) with the
    pure-Python scanner, whose object parser is told where each object starts."""
    from json.decoder import JSONObject
    from json.scanner import py_make_scanner

    def parse_object(s_and_end, strict, scan_once, object_hook, object_pairs_hook, memo=None):
        s, end = s_and_end
        try:
            return JSONObject(s_and_end, strict, scan_once, object_hook, _no_duplicate_keys, memo)
        except _DuplicateKey as err:
            if err.line is None:
                err.line = s.count("\n", 0, end) + 1
            raise

    decoder = json.JSONDecoder()
    decoder.parse_object = parse_object
    decoder.scan_once = py_make_scanner(decoder)
    try:
        decoder.decode(text)
    except _DuplicateKey as err:
        return err.line
    return None


def _decode_utf8(data: bytes, path: Path, line_no: int | None) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        if line_no is None:
            line_no = data.count(b"\n", 0, err.start) + 1
        raise ValueError(f"{path}: line {line_no} is not UTF-8 text (byte 0x{data[err.start]:02x}); save the file as "
                         "UTF-8") from None


def _too_big(path: Path) -> ValueError:
    return ValueError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB, the bound on a QA file; split it into several "
                      "files or use a data set folder")


def _read_json_lines(path: Path) -> tuple[list, list[str]]:
    """Records of a JSON lines file and where each is (`line N`), read line by line within the bounds."""
    records, places, total = [], [], 0
    with open(path, "rb") as f:
        for line_no in itertools.count(1):
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                break
            total += len(raw)
            if total > MAX_FILE_BYTES:
                raise _too_big(path)
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise ValueError(f"{path}: line {line_no} is longer than {MAX_LINE_BYTES >> 20} MiB, the bound on one "
                                 "record")
            line = _decode_utf8(raw, path, line_no)
            if line_no == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark some editors write
            if not line.strip():
                continue
            try:
                records.append(json.loads(line, object_pairs_hook=_no_duplicate_keys))
            except _DuplicateKey as err:
                raise ValueError(f"{path}: line {line_no} has the key {err.key!r} twice") from None
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: line {line_no} is not valid JSON ({err.msg})") from err
            places.append(f"line {line_no}")
    return records, places


def _read_json_records(path: Path) -> tuple[list, list[str]]:
    """The records of a `.jsonl` / `.json` file and where each one is, for error messages (`line N` of JSON lines,
    `record N` of a JSON list)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise _too_big(path)
    if path.suffix.lower() == ".jsonl":
        return _read_json_lines(path)
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _too_big(path)
    text = _decode_utf8(data, path, None).removeprefix("\ufeff")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as err:
        line = _duplicate_key_line(text)
        raise ValueError(f"{path}: {f'line {line}: ' if line else ''}an object has the key {err.key!r} twice") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records (or JSON lines in a .jsonl file)")
    return data, [f"record {i}" for i in range(len(data))]


def load_custom_qa(
    source: str | Path | datasets.Dataset | datasets.DatasetDict,
    split: str | None = None,
    *,
    base_dir: str | Path | None = None,
    check_files: bool = True,
    on_missing: str = "drop",
    return_report: bool = False,
    require_answer: bool = False,
):
    """A user's motion / video QA data in one schema (`QA_FEATURES`).

    `source`: a `.jsonl` / `.json` file, a `datasets.Dataset` / `DatasetDict`, or anything
    `datasets.load_dataset` takes (a Hub repo id or a local data set folder; `split` is passed on).
    Each record has `motion` / `motion_path` and/or `video` / `video_path`, and either `question` +
    `answer` or multi-turn `conversations` (``[{"role", "content"}]``, ShareGPT ``{"from", "value"}`` with
    human / gpt also accepted). Relative media paths resolve against `base_dir` (default: the JSON file's
    folder). Records whose files do not exist follow `on_missing` when `check_files`. A blank question or answer
    is an error naming the record; `require_answer` (training data) also refuses a record without an answer.
    """
    _check_on_missing(on_missing)
    if isinstance(source, datasets.DatasetDict):
        parts = {k: load_custom_qa(v, base_dir=base_dir, check_files=check_files, on_missing=on_missing,
                                   return_report=True, require_answer=require_answer) for k, v in source.items()}
        dd = datasets.DatasetDict({k: v[0] for k, v in parts.items()})
        if not return_report:
            return dd
        report = MissingMediaReport("custom QA", "motion/video", sum(r.total for _, r in parts.values()),
                                    [i for _, r in parts.values() for i in r.missing_ids], str(base_dir or ""))
        return dd, report
    base = Path(base_dir) if base_dir is not None else None
    if isinstance(source, datasets.Dataset):
        records, where = list(source), "dataset"
        places = [f"record {i}" for i in range(len(records))]
    else:
        path = Path(source)
        if path.is_file() and path.suffix.lower() in (".json", ".jsonl"):
            (records, places), where = _read_json_records(path), str(path)
            base = base or path.parent
        else:
            loaded = datasets.load_dataset(str(source), split=split)
            if base_dir is None and path.is_dir():
                base_dir = path  # relative media paths in a local data set folder are relative to it
            return load_custom_qa(loaded, base_dir=base_dir, check_files=check_files, on_missing=on_missing,
                                  return_report=return_report, require_answer=require_answer)
    rows = [_normalize_custom_row(r, i, f"{where}: {place}", base, require_answer)
            for i, (r, place) in enumerate(zip(records, places))]
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
