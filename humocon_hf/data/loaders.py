"""Loaders that turn the real data sets users have into `datasets` objects.

Every loader validates its input records and raises a `ValueError` naming the file and the record when
one is malformed, so a corrupt download fails at load time and not in the middle of training.

Two shared schemas:

* **QA** (`QA_FEATURES`; BABEL-QA, ActivityNet-QA, custom QA): `id`, `question`, `answer`,
  `motion_path` (or None), `video_path` (or None), `query_type`, `relation_type` (None when not
  applicable) and `conversations` = ``[{"role": "user"|"assistant"|"system", "content": str}, ...]``.
  Conversation contents are plain text: the `<motion>` / `<video>` placeholders are added by the
  processor or collator from `motion_path` / `video_path` (a user's own text that already holds them is
  kept verbatim). Loaders add their own extra columns (e.g. BABEL-QA `program`, `babel_id`).
  `select_qa_columns` keeps only the shared columns so QA sets can be concatenated.
* **Captions** (HumanML3D, KIT-ML, CMU): `id`, `motion_path`, `caption` (the first), `captions` (all).

Media (motion / video files) are joined by path, not loaded: the processor reads them when a batch is
built. When a media folder is given, examples whose file is missing are reported (a logged warning with
the count and the first ids, and a `MissingMediaReport` with ``return_report=True``) and, by
``on_missing``, dropped (default), kept with a None path, or turned into an error.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from humocon_hf.processing.motion_io import MOTION_EXTENSIONS
from humocon_hf.processing.video_processing_humocon import VIDEO_EXTENSIONS

logger = logging.getLogger(__name__)

__all__ = [
    "ACTIVITYNET_QA_TYPES",
    "CAPTION_FEATURES",
    "QA_FEATURES",
    "MissingMediaReport",
    "babel_query_type",
    "babel_relation_type",
    "load_activitynet_qa",
    "load_babel_qa",
    "load_cmu_bvh",
    "load_custom_qa",
    "load_humanml3d",
    "load_kitml",
    "select_qa_columns",
]

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

# ActivityNet-QA `type` field (DATASET_README): 0-2 question types, 3-8 answer types of free questions.
ACTIVITYNET_QA_TYPES = {
    0: "motion",
    1: "spatial_relation",
    2: "temporal_relation",
    3: "yes_no",
    4: "color",
    5: "object",
    6: "location",
    7: "number",
    8: "other",
}

_ON_MISSING = ("drop", "keep", "raise")


# --------------------------------------------------------------------------------------------- helpers


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


# ---------------------------------------------------------------------------------------------- BABEL-QA

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


# -------------------------------------------------------------------------------------------- HumanML3D


def _read_humanml3d_text(path: Path) -> list[dict]:
    entries = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split("#")
            if len(parts) != 4:
                raise ValueError(f"{path}: line {line_no}: expected 'caption#tokens#start#end', got {line!r}")
            caption, tokens, start, end = parts
            try:
                start_f = float(start) if start.strip().lower() != "nan" else 0.0
                end_f = float(end) if end.strip().lower() != "nan" else 0.0
            except ValueError as err:
                raise ValueError(f"{path}: line {line_no}: start/end {start!r}/{end!r} are not numbers") from err
            if not caption.strip():
                raise ValueError(f"{path}: line {line_no}: empty caption")
            entries.append({"caption": caption.strip(), "tokens": tokens.split(), "start": start_f, "end": end_f})
    if not entries:
        raise ValueError(f"{path}: no captions")
    return entries


def load_humanml3d(
    root: str | Path,
    split: str | None = None,
    *,
    joints_dir: str = "new_joints",
    vecs_dir: str = "new_joint_vecs",
    texts_dir: str = "texts",
    one_row_per_caption: bool = False,
    on_missing: str = "drop",
) -> datasets.Dataset:
    """Load HumanML3D from its standard layout: `<root>/new_joints/<id>.npy` (T, 22, 3),
    `<root>/new_joint_vecs/<id>.npy` (T, 263), `<root>/texts/<id>.txt` (lines ``caption#tokens#start#end``;
    start = end = 0 means the whole clip) and optional split lists `<root>/<split>.txt`.

    One row per motion (`captions` lists all, `caption` is the first) or, with `one_row_per_caption`, one row
    per text line (`id` = `<motion id>#<line>`). Columns: the caption schema plus `features_path` (263-d,
    or None), `num_frames`, `tokens`, `starts`, `ends` (seconds). A motion without a text file, or an id in the
    split list without its joints, is handled by `on_missing`.
    """
    _check_on_missing(on_missing)
    root = Path(root)
    jdir, vdir, tdir = root / joints_dir, root / vecs_dir, root / texts_dir
    if not jdir.is_dir() and not vdir.is_dir():
        raise FileNotFoundError(f"{root}: neither {joints_dir}/ nor {vecs_dir}/ exists (HumanML3D layout expected)")
    if not tdir.is_dir():
        raise FileNotFoundError(f"{tdir}: HumanML3D texts folder not found")
    if split is not None:
        split_file = root / f"{split}.txt"
        if not split_file.is_file():
            raise FileNotFoundError(f"{split_file}: split list not found")
        ids = [line.strip() for line in split_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        found = {p.stem for d in (jdir, vdir) if d.is_dir() for p in d.glob("*.npy")}
        ids = sorted(found)
    rows, missing = [], []
    for mid in ids:
        jpath, vpath, tpath = jdir / f"{mid}.npy", vdir / f"{mid}.npy", tdir / f"{mid}.txt"
        if not tpath.is_file() or not (jpath.is_file() or vpath.is_file()):
            missing.append(mid)
            continue
        num_frames = _check_motion_npy(jpath, [(22, 3)]) if jpath.is_file() else None
        if vpath.is_file():
            t_vec = _check_motion_npy(vpath, [(263,)])
            if num_frames is None:
                num_frames = t_vec
            elif t_vec not in (num_frames, num_frames - 1):  # 263-d vectors have one frame fewer
                raise ValueError(f"{vpath}: {t_vec} frames but {jpath} has {num_frames}")
        texts = _read_humanml3d_text(tpath)
        base = {
            "motion_path": str(jpath) if jpath.is_file() else None,
            "features_path": str(vpath) if vpath.is_file() else None,
            "num_frames": num_frames,
        }
        groups = [[t] for t in texts] if one_row_per_caption else [texts]
        for k, group in enumerate(groups):
            rows.append({
                "id": f"{mid}#{k}" if one_row_per_caption else mid,
                **base,
                "caption": group[0]["caption"],
                "captions": [t["caption"] for t in group],
                "tokens": [" ".join(t["tokens"]) for t in group],
                "starts": [t["start"] for t in group],
                "ends": [t["end"] for t in group],
            })
    report = MissingMediaReport("HumanML3D", "motion or text", len(ids), missing, str(root))
    if missing:
        if on_missing == "raise":
            raise FileNotFoundError(str(report))
        logger.warning("%s; skipping them", report)
    features = datasets.Features({
        **CAPTION_FEATURES,
        "features_path": datasets.Value("string"),
        "num_frames": datasets.Value("int64"),
        "tokens": datasets.List(datasets.Value("string")),
        "starts": datasets.List(datasets.Value("float64")),
        "ends": datasets.List(datasets.Value("float64")),
    })
    return _from_rows(rows, features=features)


# ----------------------------------------------------------------------------------------------- KIT-ML

_KIT_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def _kit_record(key: Any, rec: Any, file: Path) -> dict:
    where = f"{file}: record {key!r}"
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: expected an object with path / duration / annotations")
    path, duration, annotations = rec.get("path"), rec.get("duration"), rec.get("annotations")
    if not isinstance(path, str) or not path:
        raise ValueError(f"{where}: 'path' must be a non-empty string, got {path!r}")
    if not isinstance(duration, (int, float)) or isinstance(duration, bool) or not duration > 0:
        raise ValueError(f"{where}: 'duration' must be a positive number, got {duration!r}")
    if not isinstance(annotations, list) or not annotations:
        raise ValueError(f"{where}: 'annotations' must be a non-empty list")
    texts, starts, ends, seg_ids = [], [], [], []
    for j, ann in enumerate(annotations):
        if not isinstance(ann, dict) or not isinstance(ann.get("text"), str) or not ann["text"].strip():
            raise ValueError(f"{where}: annotation {j} must have a non-empty 'text', got {ann!r}")
        start, end = ann.get("start", 0.0), ann.get("end", duration)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (start, end)) or end < start:
            raise ValueError(f"{where}: annotation {j} has invalid start/end {start!r}/{end!r}")
        texts.append(ann["text"].strip())
        starts.append(float(start))
        ends.append(float(end))
        seg_ids.append(str(ann.get("seg_id", f"{key}_{j}")))
    return {
        "id": str(key),
        "amass_path": path,
        "duration": float(duration),
        "mirrored": path.startswith("M/"),
        "caption": texts[0],
        "captions": texts,
        "seg_ids": seg_ids,
        "starts": starts,
        "ends": ends,
    }


def load_kitml(
    annotations: str | Path,
    split: str | None = None,
    *,
    motion_dir: str | Path | None = None,
    include_mirrored: bool = True,
    on_missing: str = "drop",
):
    """Load KIT-ML annotations (`annotations.json`: ``{id: {path, duration, annotations: [{seg_id, text,
    start, end}]}}``, the TMR release). `annotations` is the JSON file or its folder.

    With a `splits/` folder next to the file and `split=None`, returns a `DatasetDict` train / validation /
    test; `split` ("train", "val", "test", "all", "nsim_test", ...) returns one `Dataset`; without split
    lists, all records. `motion_dir` joins motions by id (`<id>.npy`) or AMASS path (`<path>.npy` / `.npz`).
    Mirrored entries (path "M/...", ids "M....") are dropped with `include_mirrored=False`.
    """
    _check_on_missing(on_missing)
    file = Path(annotations)
    if file.is_dir():
        file = file / "annotations.json"
    data = _read_json(file)
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a JSON object keyed by motion id")
    records = {str(k): _kit_record(k, v, file) for k, v in data.items()}
    if not include_mirrored:
        records = {k: v for k, v in records.items() if not v["mirrored"]}
    index = _index_files(Path(motion_dir), MOTION_EXTENSIONS) if motion_dir is not None else None

    def build(ids: Iterable[str], name: str, source: Path | None) -> datasets.Dataset:
        rows = []
        for k in ids:
            if k not in records:
                if not include_mirrored and k.startswith("M"):
                    continue
                raise ValueError(f"{source}: id {k!r} is not in {file}")
            row = dict(records[k])
            row["motion_path"] = None
            if index is not None:
                by_rel, by_stem = index
                p = by_stem.get(k) or by_rel.get(row["amass_path"])
                row["motion_path"] = str(p) if p is not None else None
            rows.append(row)
        if index is not None:
            report = MissingMediaReport(f"KIT-ML {name}", "motion", len(rows),
                                        [r["id"] for r in rows if r["motion_path"] is None], str(motion_dir))
            rows = _apply_missing_policy(rows, "motion_path", report, on_missing)
        features = datasets.Features({
            **CAPTION_FEATURES,
            "amass_path": datasets.Value("string"),
            "duration": datasets.Value("float64"),
            "mirrored": datasets.Value("bool"),
            "seg_ids": datasets.List(datasets.Value("string")),
            "starts": datasets.List(datasets.Value("float64")),
            "ends": datasets.List(datasets.Value("float64")),
        })
        return _from_rows(rows, features=features)

    splits_dir = file.parent / "splits"

    def read_split(name: str) -> tuple[list[str], Path]:
        path = splits_dir / f"{name}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: KIT-ML split list not found")
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()], path

    if split is not None:
        ids, path = read_split(split)
        return build(ids, split, path)
    if splits_dir.is_dir() and all((splits_dir / f"{s}.txt").is_file() for s in _KIT_SPLITS):
        return datasets.DatasetDict({name: build(*read_split(s), name) for s, name in _KIT_SPLITS.items()})
    return build(list(records), "all", None)


# -------------------------------------------------------------------------------------------------- CMU

_CMU_TRIAL = re.compile(r"^0*(\d+)_0*(\d+)$")

# Word stems of CMU trial descriptions -> the benchmark's action answer (BABEL-QA vocabulary). Only locomotion
# and jumps: CMU's other descriptions ("playground - climb", "dance") have no unambiguous answer in it.
_CMU_ACTION_WORDS = {
    "walk": "walk", "walks": "walk", "walking": "walk", "stride": "walk", "strides": "walk",
    "run": "run", "runs": "run", "running": "run", "sprint": "run", "sprints": "run", "sprinting": "run",
    "jog": "jog", "jogs": "jog", "jogging": "jog",
    "jump": "jump", "jumps": "jump", "jumping": "jump", "hop": "jump", "hops": "jump", "hopping": "jump",
}


def cmu_action_label(description: str | None) -> str | None:
    """The benchmark's action answer for a CMU trial description, or None when it names no such action or more than
    one ("walk" -> walk, "walk/stride" -> walk, "forward jump" -> jump, "jump up to grab, reach for, tiptoe" -> jump,
    "run/jog" -> None, "playground - climb" -> None). "jumping jacks" is not a jump."""
    if not description:
        return None
    text = description.lower()
    if "jumping jack" in text:
        return "jumping jacks"
    found = {_CMU_ACTION_WORDS[w] for w in re.findall(r"[a-z]+", text) if w in _CMU_ACTION_WORDS}
    return found.pop() if len(found) == 1 else None


def _read_cmu_descriptions(csv_path: Path) -> dict[tuple[int, int], dict]:
    if not csv_path.is_file():
        raise FileNotFoundError(f"{csv_path}: CMU descriptions CSV not found")
    out = {}
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        required = {"Subject", "Trial #", "Motion Description"}
        if reader.fieldnames is None or not required <= set(reader.fieldnames):
            raise ValueError(f"{csv_path}: expected columns {sorted(required)}, got {reader.fieldnames}")
        for row in reader:
            line = reader.line_num
            try:
                key = (int(row["Subject"]), int(row["Trial #"]))
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"{csv_path}: line {line}: Subject / Trial # must be integers, got "
                    f"{row.get('Subject')!r} / {row.get('Trial #')!r}"
                ) from err
            desc = (row["Motion Description"] or "").strip()
            if key in out:
                raise ValueError(f"{csv_path}: line {line}: duplicate row for subject {key[0]} trial {key[1]}")
            fps = row.get("framerate")
            try:
                fps_f = float(fps) if fps not in (None, "") else None
            except ValueError as err:
                raise ValueError(f"{csv_path}: line {line}: framerate {fps!r} is not a number") from err
            # An empty description (a few CMU trials have none) counts as "no description" for that trial.
            out[key] = {"caption": desc or None, "source_fps": fps_f}
    return out


def load_cmu_bvh(
    bvh_dir: str | Path,
    descriptions_csv: str | Path,
    *,
    on_missing: str = "drop",
) -> datasets.Dataset:
    """CMU BVH files in `bvh_dir` (recursively; names `<subject>_<trial>.bvh`, zero padding free: `02_01`,
    `002_01`) joined with CMU's own trial descriptions (`CMU_data.csv`: Subject, Trial #, Motion
    Description, framerate). One row per BVH file present: `id` ("02_01"), `subject`, `trial`, `caption`
    (= the description; `captions` = [it]), `motion_path`, `source_fps` (the CSV frame rate; use it over the
    BVH header, which is wrong in some conversions), `action` (the benchmark's answer to "what action does the
    person do", from the description by `cmu_action_label`; None when it names none or several). Files without a CSV row follow `on_missing`; files
    whose name is not a CMU trial name are skipped with a warning.
    """
    _check_on_missing(on_missing)
    folder = Path(bvh_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: BVH folder not found")
    desc = _read_cmu_descriptions(Path(descriptions_csv))
    rows, unnamed = [], []
    for path in sorted(folder.rglob("*.bvh")):
        match = _CMU_TRIAL.match(path.stem)
        if match is None:
            unnamed.append(path.name)
            continue
        subject, trial = int(match.group(1)), int(match.group(2))
        info = desc.get((subject, trial))
        if info is not None and info["caption"] is None:
            info = None
        rows.append({
            "id": f"{subject:02d}_{trial:02d}",
            "subject": subject,
            "trial": trial,
            "motion_path": str(path),
            "caption": info["caption"] if info else None,
            "captions": [info["caption"]] if info else [],
            "source_fps": info["source_fps"] if info else None,
            "action": cmu_action_label(info["caption"]) if info else None,
        })
    if unnamed:
        logger.warning("%s: %d BVH files are not named <subject>_<trial>.bvh and were skipped: %s",
                       folder, len(unnamed), ", ".join(unnamed[:10]))
    if not rows:
        raise ValueError(f"{folder}: no BVH files named <subject>_<trial>.bvh")
    missing = [r["id"] for r in rows if r["caption"] is None]
    if missing:
        report = MissingMediaReport("CMU BVH", "description", len(rows), missing, str(descriptions_csv))
        if on_missing == "raise":
            raise ValueError(str(report))
        logger.warning("%s; %s", report, "dropping them" if on_missing == "drop" else "keeping them")
        if on_missing == "drop":
            rows = [r for r in rows if r["caption"] is not None]
    features = datasets.Features({
        **CAPTION_FEATURES,
        "subject": datasets.Value("int32"),
        "trial": datasets.Value("int32"),
        "source_fps": datasets.Value("float64"),
        "action": datasets.Value("string"),
    })
    return _from_rows(rows, features=features)


# -------------------------------------------------------------------------------------------- Bandai Namco

# Bandai Namco Research Motiondataset content labels -> (caption phrase, action answer in the BABEL-QA vocabulary
# of the benchmark or None, direction answer or None). walk-left / walk-right are diagonal walks (forward and to
# that side), so they get no direction question.
BANDAI_CONTENT = {
    "walk": ("walks forward", "walk", "forward"),
    "walk-back": ("walks backwards", "walk", "backwards"),
    "walk-left": ("walks forward and to the left", "walk", None),
    "walk-right": ("walks forward and to the right", "walk", None),
    "run": ("runs forward", "run", "forward"),
    "dash": ("dashes forward", "run", "forward"),
    "bow": ("bows", None, None),
    "bye": ("waves goodbye with one hand", "wave", None),
    "byebye": ("waves goodbye with both hands", "wave", None),
    "guide": ("gestures to show someone the way", None, None),
    "respond": ("responds with a gesture", None, None),
    "call": ("beckons someone over with a hand", None, None),
    "punch": ("punches", None, None),
    "kick": ("kicks", "kick", None),
    "slash": ("slashes with an arm", None, None),
    "dance-long": ("dances", None, None),
    "dance-short": ("dances", None, None),
}
BANDAI_STYLE = {
    "normal": "", "happy": "happily", "sad": "sadly", "angry": "angrily", "proud": "proudly",
    "not-confident": "without confidence", "masculinity": "in a masculine way", "feminine": "in a feminine way",
    "childish": "like a child", "old": "like an old person", "tired": "tiredly", "active": "energetically",
    "musical": "like in a musical", "giant": "like a giant", "chimpira": "like a thug",
}
_BANDAI_FILE = re.compile(r"^dataset-1_(?P<content>[a-z-]+)_(?P<style>[a-z-]+)_(?P<take>\d+)$")


def _read_label_list(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Bandai Namco label list not found (expected cfg/content_label.txt and "
                                "cfg/style_label.txt in the data set folder)")
    return [line.strip().removeprefix("dataset-1_") for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def load_bandai_namco(folder: str | Path) -> datasets.Dataset:
    """The Bandai Namco Research Motiondataset 1 (real studio mocap, 30 fps BVH of its own rig): one row per take
    with `id`, `motion_path`, `content` (walk, run, bow, kick...), `style` (happy, tired, old...), a `caption` made
    from both ("a person walks forward happily"), and the benchmark's `action` / `direction` answer where the
    content has one (None otherwise).

    Labels come from each take's JSON (`{"content": i, "style": j}`, indices into `cfg/content_label.txt` /
    `cfg/style_label.txt`); a JSON that disagrees with the file name raises. The motions load through
    `load_bvh`'s automatic skeleton mapping. Licence: CC BY-NC 4.0 (non-commercial research; credit Bandai Namco
    Research Inc.).
    """
    root = Path(folder)
    data = root / "data" if (root / "data").is_dir() else root
    if not data.is_dir():
        raise FileNotFoundError(f"{root}: Bandai Namco data set folder not found")
    cfg = root / "cfg" if (root / "cfg").is_dir() else data.parent / "cfg"
    contents = _read_label_list(cfg / "content_label.txt")
    styles = _read_label_list(cfg / "style_label.txt")
    rows = []
    for path in sorted(data.glob("*.bvh")):
        match = _BANDAI_FILE.match(path.stem)
        if match is None:
            raise ValueError(f"{path}: not a Bandai Namco take name (dataset-1_<content>_<style>_<nnn>.bvh)")
        content, style = match.group("content"), match.group("style")
        label_file = path.with_suffix(".json")
        if label_file.is_file():
            labels = _read_json(label_file)
            try:
                by_json = contents[int(labels["content"])], styles[int(labels["style"])]
            except (KeyError, TypeError, ValueError, IndexError):
                raise ValueError(f"{label_file}: expected {{'content': index, 'style': index}} into the cfg label "
                                 f"lists, got {labels!r}") from None
            if by_json != (content, style):
                raise ValueError(f"{label_file}: labels {by_json} disagree with the file name ({content}, {style})")
        if content not in BANDAI_CONTENT or style not in BANDAI_STYLE:
            raise ValueError(f"{path}: unknown content {content!r} or style {style!r}")
        phrase, action, direction = BANDAI_CONTENT[content]
        caption = " ".join(filter(None, ["a person", phrase, BANDAI_STYLE[style]]))
        rows.append({"id": path.stem.removeprefix("dataset-1_"), "motion_path": str(path), "caption": caption,
                     "captions": [caption], "content": content, "style": style, "action": action,
                     "direction": direction})
    if not rows:
        raise ValueError(f"{data}: no Bandai Namco .bvh takes found")
    features = datasets.Features({
        **CAPTION_FEATURES,
        "content": datasets.Value("string"),
        "style": datasets.Value("string"),
        "action": datasets.Value("string"),
        "direction": datasets.Value("string"),
    })
    return _from_rows(rows, features=features)


# -------------------------------------------------------------------------------------------- ActivityNet


def load_activitynet_qa(
    questions_json: str | Path,
    answers_json: str | Path,
    video_dir: str | Path | None = None,
    *,
    on_missing: str = "drop",
    return_report: bool = False,
):
    """ActivityNet-QA (`*_q.json`: [{video_name, question, question_id}], `*_a.json`: [{answer, type,
    question_id}]) joined by question id, with videos from the user's `video_dir` matched as
    `v_<video_name>.<ext>` or `<video_name>.<ext>` (mp4, mkv, webm, avi, mov, ...).

    Columns: the QA schema (`query_type` = the ActivityNet type name, see `ACTIVITYNET_QA_TYPES`;
    `relation_type` None) plus `video_id` and `answer_type` (the raw int).
    """
    _check_on_missing(on_missing)
    qfile, afile = Path(questions_json), Path(answers_json)
    questions, answers = _read_json(qfile), _read_json(afile)
    for file, data in ((qfile, questions), (afile, answers)):
        if not isinstance(data, list):
            raise ValueError(f"{file}: expected a JSON list of records")
    by_id: dict[str, dict] = {}
    for i, a in enumerate(answers):
        if not isinstance(a, dict) or not isinstance(a.get("question_id"), str) or not isinstance(a.get("answer"), str):
            raise ValueError(f"{afile}: record {i}: expected {{answer: str, type: int, question_id: str}}, got {a!r}")
        if a.get("type") not in ACTIVITYNET_QA_TYPES:
            raise ValueError(f"{afile}: record {i} (question_id {a['question_id']}): type {a.get('type')!r} not in 0..8")
        if a["question_id"] in by_id:
            raise ValueError(f"{afile}: record {i}: duplicate question_id {a['question_id']}")
        by_id[a["question_id"]] = a
    index = _index_files(Path(video_dir), VIDEO_EXTENSIONS)[1] if video_dir is not None else None
    rows, seen = [], set()
    for i, q in enumerate(questions):
        if not isinstance(q, dict) or not all(isinstance(q.get(k), str) and q.get(k) for k in ("video_name", "question", "question_id")):
            raise ValueError(f"{qfile}: record {i}: expected {{video_name, question, question_id}} strings, got {q!r}")
        qid = q["question_id"]
        if qid in seen:
            raise ValueError(f"{qfile}: record {i}: duplicate question_id {qid}")
        seen.add(qid)
        if qid not in by_id:
            raise ValueError(f"{qfile}: record {i}: question_id {qid} has no answer in {afile}")
        a = by_id[qid]
        video = None
        if index is not None:
            vid = q["video_name"]
            video = index.get(f"v_{vid}") or index.get(vid)
        rows.append({
            "id": qid,
            "question": q["question"],
            "answer": a["answer"],
            "motion_path": None,
            "video_path": str(video) if video is not None else None,
            "query_type": ACTIVITYNET_QA_TYPES[a["type"]],
            "relation_type": None,
            "conversations": _qa_conversation(q["question"], a["answer"]),
            "video_id": q["video_name"],
            "answer_type": a["type"],
        })
    report = MissingMediaReport("ActivityNet-QA", "video", len(rows), [], str(video_dir or ""))
    if index is not None:
        report.missing_ids = [r["id"] for r in rows if r["video_path"] is None]
        rows = _apply_missing_policy(rows, "video_path", report, on_missing)
    features = datasets.Features({**QA_FEATURES, "video_id": datasets.Value("string"), "answer_type": datasets.Value("int32")})
    ds = _from_rows(rows, features=features)
    return (ds, report) if return_report else ds


# ------------------------------------------------------------------------------------------- custom QA

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
