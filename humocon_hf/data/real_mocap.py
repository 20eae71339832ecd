"""Real studio motion capture as BVH files: CMU (with its trial descriptions) and the Bandai Namco Research
Motiondataset 1 (content / style labels), in the caption schema plus the benchmark's action (and direction) answer."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import datasets

from humocon_hf.data.loader_common import (
    CAPTION_FEATURES,
    MissingMediaReport,
    _check_on_missing,
    _from_rows,
    _read_json,
    logger,
)

__all__ = ["BANDAI_CONTENT", "BANDAI_STYLE", "cmu_action_label", "load_bandai_namco", "load_cmu_bvh"]


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
