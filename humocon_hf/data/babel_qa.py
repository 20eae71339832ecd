"""BABEL-QA: question records with their functional programs, joined with the user's AMASS / SMPL-joints motions."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from humocon_hf.data.loader_common import (
    QA_FEATURES,
    MissingMediaReport,
    _check_motion_npy,
    _check_on_missing,
    _from_rows,
    _index_files,
    _qa_conversation,
    _read_json,
    logger,
)

__all__ = ["babel_query_type", "babel_relation_type", "load_babel_qa"]

_PROGRAM_STEP = re.compile(r"^(\[\d+\]|\?)=(\w+)\((.*)\)$")
_QUERY_OPS = {"query_action": "action", "query_direction": "direction", "query_body_part": "body_part"}
_BABEL_SPLITS = {"train": "train", "val": "validation", "test": "test"}
_BABEL_QUERY_VOCABS = {
    "action": "BABELQA_action_answer_vocab.json",
    "direction": "BABELQA_direction_answer_vocab.json",
    "body_part": "BABELQA_body_part_answer_vocab.json",
}


def _parse_program(program: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(program, list) or not program or not all(isinstance(s, str) for s in program):
        raise ValueError(f"{where}: program must be a non-empty list of strings, got {program!r}")
    steps = []
    for step in program:
        match = _PROGRAM_STEP.match(step.strip())
        if match is None:
            raise ValueError(f"{where}: program step {step!r} is not of the form '[i]=op(args)'")
        steps.append((match.group(2), match.group(3)))
    return steps


def babel_query_type(program: list[str], where: str = "program") -> str:
    """'action' / 'direction' / 'body_part' from the program's final `?=query_*` step."""
    steps = _parse_program(program, where)
    op = steps[-1][0]
    if not program[-1].strip().startswith("?=") or op not in _QUERY_OPS:
        raise ValueError(f"{where}: the last program step must be '?=query_action|direction|body_part(...)', got {program[-1]!r}")
    return _QUERY_OPS[op]


def babel_relation_type(program: list[str], where: str = "program") -> str:
    """'before' / 'after' (one `relate`), 'in between' (a before and an after, intersected) or 'none'."""
    relations = []
    for op, args in _parse_program(program, where):
        if op == "relate":
            rel = args.rsplit(",", 1)[-1].strip()
            if rel not in ("before", "after"):
                raise ValueError(f"{where}: relate step has relation {rel!r}, expected 'before' or 'after'")
            relations.append(rel)
    if not relations:
        return "none"
    if len(relations) == 1:
        return relations[0]
    if sorted(relations) == ["after", "before"]:
        return "in between"
    raise ValueError(f"{where}: unsupported combination of relations {relations}")


def _babel_record(record: Any, file: Path, index: int) -> dict:
    where = f"{file}: record {index}"
    if not isinstance(record, list) or len(record) != 5:
        raise ValueError(f"{where}: expected [question_id, question, program, babel_id, answer], got {record!r}")
    qid, question, program, babel_id, answer = record
    for name, value in (("question_id", qid), ("question", question), ("babel_id", babel_id), ("answer", answer)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}: {name} must be a non-empty string, got {value!r}")
    where = f"{where} (question_id {qid})"
    return {
        "id": qid,
        "question": question,
        "answer": answer,
        "program": list(program) if isinstance(program, list) else program,
        "query_type": babel_query_type(program, where),
        "relation_type": babel_relation_type(program, where),
        "babel_id": babel_id,
    }


def load_babel_qa(
    babel_qa_dir: str | Path,
    motion_dir: str | Path | None = None,
    *,
    amass_dir: str | Path | None = None,
    body_model_dir: str | Path | None = None,
    joints_cache_dir: str | Path | None = None,
    amass_loader: Callable[[str, str], Any] | None = None,
    on_missing: str = "drop",
    check_motions: bool = True,
    return_report: bool = False,
):
    """Load BABEL-QA (`BABELQA_{train,val,test}.json` records ``[question_id, question, program, babel_id,
    answer]``) into a `DatasetDict` with splits "train" / "validation" / "test" taken from the official
    `split_question_ids.json`.

    Motions (not redistributable) come from the user, either
    * `motion_dir`: pre-extracted SMPL-22 joints `.npy` (T, 22, 3), named `<babel_id>.npy` or by AMASS path
      (`<motion_dir>/CMU/91/91_48_poses.npy`), or
    * `amass_dir`: AMASS `.npz` files by AMASS path. With `body_model_dir` and `joints_cache_dir` they are
      converted once to joints with `load_amass_npz` (the body-model extra) and cached as `<babel_id>.npy`;
      without them `motion_path` points at the `.npz` (the processor converts it when given a body model).

    Columns: the QA schema plus `program` (list[str]), `babel_id`, `amass_path` (None when the BABEL id is
    not in `amass_to_babel.json`). `query_type` comes from the program's `query_*` step (and is checked
    against the per-type answer vocabularies when present), `relation_type` from its `relate` steps.
    """
    _check_on_missing(on_missing)
    root = Path(babel_qa_dir)
    split_ids = _read_json(root / "split_question_ids.json")
    if not isinstance(split_ids, dict) or set(split_ids) != set(_BABEL_SPLITS):
        raise ValueError(f"{root / 'split_question_ids.json'}: expected a dict with keys train / val / test")
    amass_map = _read_json(root / "amass_to_babel.json")
    if not isinstance(amass_map, dict):
        raise ValueError(f"{root / 'amass_to_babel.json'}: expected a dict {{AMASS path: BABEL id}}")
    babel_to_amass: dict[str, str] = {}
    for amass_path, babel_id in amass_map.items():  # the file maps AMASS path -> BABEL id
        babel_to_amass.setdefault(str(babel_id), amass_path)

    vocabs = {}
    for qtype, name in _BABEL_QUERY_VOCABS.items():
        if (root / name).is_file():
            vocabs[qtype] = set(_read_json(root / name))

    records: dict[str, dict] = {}
    for split in _BABEL_SPLITS:
        file = root / f"BABELQA_{split}.json"
        data = _read_json(file)
        if not isinstance(data, list):
            raise ValueError(f"{file}: expected a JSON list of records")
        for i, raw in enumerate(data):
            rec = _babel_record(raw, file, i)
            if rec["id"] in records:
                raise ValueError(f"{file}: record {i}: duplicate question_id {rec['id']}")
            vocab = vocabs.get(rec["query_type"])
            if vocab is not None and rec["answer"] not in vocab:
                raise ValueError(
                    f"{file}: record {i} (question_id {rec['id']}): answer {rec['answer']!r} is not in the "
                    f"{rec['query_type']} answer vocabulary"
                )
            rec["amass_path"] = babel_to_amass.get(rec["babel_id"])
            records[rec["id"]] = rec

    resolve = _babel_motion_resolver(
        motion_dir, amass_dir, body_model_dir, joints_cache_dir, amass_loader, check_motions
    )
    report = MissingMediaReport("BABEL-QA", "motion", 0, searched=str(motion_dir or amass_dir or ""))
    out = {}
    for split, name in _BABEL_SPLITS.items():
        rows = []
        for qid in split_ids[split]:
            if qid not in records:
                raise ValueError(f"{root / 'split_question_ids.json'}: {split} id {qid} has no record in BABELQA_*.json")
            rec = dict(records[qid])
            rec["motion_path"] = resolve(rec["babel_id"], rec["amass_path"]) if resolve else None
            rec["video_path"] = None
            rec["conversations"] = _qa_conversation(rec["question"], rec["answer"])
            rows.append(rec)
        if resolve is not None:
            report.total += len(rows)
            report.missing_ids += [r["id"] for r in rows if r["motion_path"] is None]
        out[name] = rows
    if resolve is not None and report.count:
        if on_missing == "raise":
            raise FileNotFoundError(str(report))
        logger.warning("%s; %s", report, "dropping them" if on_missing == "drop" else "keeping them with no path")
        if on_missing == "drop":
            out = {name: [r for r in rows if r["motion_path"] is not None] for name, rows in out.items()}
    features = datasets.Features(
        {
            **QA_FEATURES,
            "program": datasets.List(datasets.Value("string")),
            "babel_id": datasets.Value("string"),
            "amass_path": datasets.Value("string"),
        }
    )
    dd = datasets.DatasetDict({k: _from_rows(v, features=features) for k, v in out.items()})
    return (dd, report) if return_report else dd


def _babel_motion_resolver(motion_dir, amass_dir, body_model_dir, joints_cache_dir, amass_loader, check):
    if motion_dir is None and amass_dir is None:
        return None
    if motion_dir is not None:
        by_rel, by_stem = _index_files(Path(motion_dir), (".npy",))
        checked: dict[Path, None] = {}

        def resolve(babel_id: str, amass_path: str | None) -> str | None:
            path = by_stem.get(babel_id) or (by_rel.get(amass_path) if amass_path else None)
            if path is None:
                return None
            if check and path not in checked:
                _check_motion_npy(path, [(22, 3)])
                checked[path] = None
            return str(path)

        return resolve

    by_rel, _ = _index_files(Path(amass_dir), (".npz",))
    convert = body_model_dir is not None or amass_loader is not None
    if convert and joints_cache_dir is None:
        raise ValueError("converting AMASS .npz to joints needs joints_cache_dir (where the .npy files are cached)")
    if convert and amass_loader is None:
        try:
            from humocon_hf.processing.motion_io import load_amass_npz
        except ImportError as err:  # pragma: no cover - depends on the install
            raise ImportError("AMASS conversion needs humocon_hf.processing.motion_io.load_amass_npz") from err
        amass_loader = load_amass_npz
    cache = Path(joints_cache_dir) if joints_cache_dir is not None else None

    def resolve_amass(babel_id: str, amass_path: str | None) -> str | None:
        src = by_rel.get(amass_path) if amass_path else None
        if src is None:
            return None
        if not convert:
            return str(src)
        target = cache / f"{babel_id}.npy"
        if not target.is_file():
            clip = amass_loader(str(src), None if body_model_dir is None else str(body_model_dir))
            joints = np.asarray(getattr(clip, "joints", clip), dtype=np.float32)
            if joints.ndim != 3 or joints.shape[1:] != (22, 3) or len(joints) == 0:
                raise ValueError(f"{src}: AMASS conversion gave shape {joints.shape}, expected (T, 22, 3)")
            cache.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.stem + ".tmp.npy")
            np.save(tmp, joints)
            tmp.replace(target)
        return str(target)

    return resolve_amass
