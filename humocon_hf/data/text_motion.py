"""Text-motion corpora: HumanML3D and KIT-ML, motions with free-text captions (the caption schema)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import datasets

from humocon_hf.data.loader_common import (
    CAPTION_FEATURES,
    MissingMediaReport,
    _apply_missing_policy,
    _check_motion_npy,
    _check_on_missing,
    _from_rows,
    _index_files,
    _read_json,
    logger,
)
from humocon_hf.processing.motion_io import MOTION_EXTENSIONS

__all__ = ["load_humanml3d", "load_kitml"]


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
