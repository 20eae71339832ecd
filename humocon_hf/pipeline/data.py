"""The data the stages consume: the built-in benchmark, its captions, rendered motion-video pairs, and the real mocap
(CMU trials with their descriptions, Bandai Namco takes) found in `../shared/data` or the recipe's folders."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from humocon_hf.inference import row_motion

if TYPE_CHECKING:
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor
    from humocon_hf.recipes import DataArguments

logger = logging.getLogger(__name__)


def find_shared_data() -> Path | None:
    """The real-data folder: $HUMOCON_SHARED_DATA, else ../shared/data from the working directory or the repo."""
    candidates = []
    if os.environ.get("HUMOCON_SHARED_DATA"):
        candidates.append(Path(os.environ["HUMOCON_SHARED_DATA"]))
    candidates.append(Path.cwd().parent / "shared" / "data")
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    return None


def _resolve_folder(value, key: str, shared_name: str) -> Path | None:
    """A recipe's data folder: None when disabled (null) or 'auto' finds nothing, the shared copy for 'auto'."""
    if value in (None, "", "none", False):
        return None
    if value == "auto":
        shared = find_shared_data()
        found = shared / shared_name if shared is not None else None
        return found if found is not None and found.is_dir() else None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data.{key}={value!r} is not a folder; fix the path or set it to null")
    return path


def resolve_bandai(data_args: DataArguments) -> Path | None:
    """The Bandai Namco data set folder, or None when the recipe disables it or it is absent."""
    return _resolve_folder(data_args.bandai_dir, "bandai_dir", "bandai_namco_1")


def resolve_hdm05(data_args: DataArguments) -> Path | None:
    """The HDM05 ASF/AMC folder, or None when the recipe disables it or it is absent."""
    return _resolve_folder(data_args.hdm05_dir, "hdm05_dir", "hdm05_train")


def labelled_real_takes(data_args: DataArguments) -> list[dict]:
    """Every labelled real take of the recipe's HDM05 and Bandai Namco folders as a row of facts
    (:mod:`humocon_hf.data.real_motion_qa`) with ``dataset``, ``group`` (actor / style) and ``heldout`` (the recipe's
    held-out actors and styles: never trained on, asked about at the end). Body parts whose side is read from the motion
    are still ``"?hand"`` here; the data stage resolves them once the joints are loaded."""
    from humocon_hf.data.real_motion_qa import BANDAI_FACTS, load_hdm05

    takes = []
    folder = resolve_hdm05(data_args)
    if folder is not None:
        held = set(data_args.hdm05_holdout_actors or ())
        for row in load_hdm05(folder):
            takes.append({**row, "dataset": "hdm05", "group": row["actor"], "heldout": row["actor"] in held,
                          "load_kwargs": {"source_fps": row["source_fps"]}})
    folder = resolve_bandai(data_args)
    if folder is not None:
        from humocon_hf.data.real_mocap import load_bandai_namco

        held = set(data_args.bandai_holdout_styles or ())
        for row in load_bandai_namco(folder):
            action, part, direction, veer = BANDAI_FACTS[row["content"]]
            takes.append({"id": f"bandai_{row['id']}", "motion_path": row["motion_path"], "caption": row["caption"],
                          "action": action, "body_part": part, "direction": direction, "turn": None, "veer": veer,
                          "dataset": "bandai", "group": row["style"], "heldout": row["style"] in held,
                          "label": row["content"], "load_kwargs": {}})
    return takes


# The real_cmu line's question about a whole held-out CMU trial: how a user asks (`humocon ask`, the README).
HELD_OUT_ACTION_QUESTION = "What is the person doing?"


def real_qa_rows(real_rows: list[dict], per_fact: int = 2, seed: int = 0) -> list[dict]:
    """Stage-3 questions about the real training takes: each fact (action, body part and side, direction, turn) in
    ``per_fact`` trained phrasings, option questions among them, and "Describe the motion." with the caption."""
    import numpy as np

    from humocon_hf.data.procedural_vocabulary import VOCABULARY_ACTION_WORDS
    from humocon_hf.data.real_motion_qa import REAL_ACTION_WORDS, real_questions

    rng = np.random.default_rng(seed)
    rows = []
    for r in real_rows:
        # The procedural vocabulary clips' options may name their own words; a real take's draw stays as it was.
        words = REAL_ACTION_WORDS + VOCABULARY_ACTION_WORDS if r.get("dataset") == "vocabulary" else REAL_ACTION_WORDS
        for q in real_questions(r, "trained", rng, per_type=per_fact, captions=True, action_words=words):
            rows.append({"question": q["question"], "answer": q["answer"], "motion": r["motion_path"]})
    return rows


# How a procedural question lists its options in training. None of these is an evaluation paraphrase ("Pick one:
# ... What is the person doing?" stays unseen), and a listed answer is never a hint: the options are shuffled.
LISTED_OPTION_FORMS = (
    "{question} Options: {options}.",
    "{question} Is it {options}?",
    "Choose from {options}. {question}",
    "{question} Answer with one of: {options}.",
)


def with_listed_options(rows: list[dict], share: float, seed: int = 0) -> list[dict]:
    """``rows`` (procedural training questions with ``question``, ``answer``, ``query_type``) with a ``share`` of them
    asked with 2-3 options listed, the answer among them and the others drawn from the answers the same query type
    has in ``rows``. Why: the real questions alone (one option question per fact) left the model answering its own
    guess to about 2% of the questions that list options; this is the same motion-to-answer practice in the form
    that makes the answer one of the options. Other rows are returned unchanged (same order, same count). Measured at
    0.25 (docs/results.md): 99.0% of option questions answered with an option instead of 98.1%, but the procedural
    table 7 points lower: off in the small recipe."""
    import numpy as np

    from humocon_hf.data.real_motion_qa import options_text

    if not rows or share <= 0:
        return list(rows)
    rng = np.random.default_rng(seed)
    answers: dict[str, list[str]] = {}
    for r in rows:
        words = answers.setdefault(r["query_type"], [])
        if r["answer"] not in words:
            words.append(r["answer"])
    out = []
    for r in rows:
        others = [w for w in answers[r["query_type"]] if w != r["answer"]]
        if not others or rng.random() >= share:
            out.append(r)
            continue
        k = min(len(others), int(rng.integers(1, 3)))
        options = [r["answer"], *(others[i] for i in rng.choice(len(others), size=k, replace=False))]
        options = [options[i] for i in rng.permutation(len(options))]
        form = LISTED_OPTION_FORMS[int(rng.integers(len(LISTED_OPTION_FORMS)))]
        out.append({**r, "question": form.format(question=r["question"], options=options_text(options))})
    return out


def heldout_real_questions(heldout_rows: list[dict], seed: int = 0) -> list[dict]:
    """The evaluation's questions about the held-out real takes: each fact once in a trained phrasing and once in a
    paraphrase no training question used (the same draw for every seed of a recipe, so seeds pair)."""
    import numpy as np

    from humocon_hf.data.real_motion_qa import real_questions

    rng = np.random.default_rng(seed)
    out = []
    for r in heldout_rows:
        for phrasing in ("trained", "paraphrase"):
            for i, q in enumerate(real_questions(r, phrasing, rng, per_type=1)):
                out.append({**q, "id": f"{r['id']}:{phrasing}:{i}", "motion_path": r["motion_path"],
                            "dataset": r["dataset"], "group": r.get("group")})
    return out


def resolve_cmu(data_args: DataArguments) -> tuple[Path | None, Path | None]:
    """(BVH folder, descriptions CSV) or (None, None) when the recipe disables CMU or it is absent."""
    bvh = data_args.cmu_bvh_dir
    if bvh in (None, "", "none", False):
        return None, None
    if bvh == "auto":
        shared = find_shared_data()
        if shared is None or not (shared / "cmu_bvh").is_dir():
            return None, None
        bvh_dir = shared / "cmu_bvh"
    else:
        bvh_dir = Path(bvh).expanduser()
        if not bvh_dir.is_dir():
            raise FileNotFoundError(f"data.cmu_bvh_dir={bvh!r} is not a folder; fix the path or set it to null")
    csv = data_args.cmu_descriptions_csv
    if csv in (None, "", "auto"):
        for candidate in (bvh_dir.parent / "cmu_index" / "CMU_data.csv", bvh_dir / "CMU_data.csv"):
            if candidate.is_file():
                return bvh_dir, candidate
        if csv == "auto" or csv is None:
            logger.warning("CMU BVH folder %s has no CMU_data.csv next to it; CMU motions are not used", bvh_dir)
            return None, None
    csv_path = Path(csv).expanduser()
    if not csv_path.is_file():
        raise FileNotFoundError(f"data.cmu_descriptions_csv={csv!r} does not exist")
    return bvh_dir, csv_path


def build_benchmark(data_args: DataArguments, cache_dir: Path):
    """The procedural motion-QA `DatasetDict` (train / validation / test) for the recipe's data section."""
    if data_args.dataset != "procedural":
        from humocon_hf.data.custom_qa import load_custom_qa

        loaded = load_custom_qa(data_args.dataset)
        if hasattr(loaded, "keys") and "test" in loaded:
            return loaded
        raise ValueError(
            f"data.dataset={data_args.dataset!r}: the demo needs train and test splits; give a folder / data set with "
            "both, or use the built-in 'procedural' benchmark"
        )
    from humocon_hf.data.procedural import generate_motion_qa

    n_train, n_val, n_test = data_args.num_train_motions, data_args.num_validation_motions, data_args.num_test_motions
    total = n_train + n_val + n_test
    return generate_motion_qa(
        num_motions=total,
        seed=data_args.seed,
        questions_per_motion=data_args.questions_per_motion,
        cache_dir=str(data_args.cache_dir or cache_dir),
        splits=(n_train / total, n_val / total, n_test / total),
        rows="questions",
        max_frames=data_args.max_frames,
        extra_train_motions=data_args.extra_train_motions,
        realism=data_args.procedural_realism,
    )


def unique_motion_rows(split) -> list[dict]:
    """One row per distinct motion of a QA split (questions share motions)."""
    seen, out = set(), []
    key_col = next((c for c in ("motion_id", "motion_path", "caption") if c in split.column_names), None)
    for i, row in enumerate(split):
        key = row[key_col] if key_col else i
        if key in seen:
            continue
        seen.add(key)
        out.append(row)
    return out


def caption_rows(split) -> list[tuple[Any, str]]:
    rows = []
    for row in unique_motion_rows(split):
        caption = row.get("caption")
        if caption:
            rows.append((row_motion(row), caption))
    return rows


def rendered_pairs(items: list[dict], processor: MotionVideoProcessor) -> list[dict]:
    """Frame-aligned motion-video pairs: each motion rendered to video frames (same clock, 20 fps)."""
    from tqdm.auto import tqdm

    from humocon_hf.processing.rendering import render_motion

    size = processor.video_processor.size
    side = size["height"] if isinstance(size, dict) else int(size)
    pairs = []
    for item in tqdm(items, desc="rendering motion-video pairs", unit="clip"):
        joints = item["motion"]
        if isinstance(joints, (str, os.PathLike)):
            from humocon_hf.processing.motion_io import load_motion

            joints = load_motion(joints).joints
        frames = render_motion(joints, size=max(64, side))
        pairs.append({"motion": joints, "video": frames, "video_fps": 20.0, "paired": True})
    return pairs


# ------------------------------------------------------------------ what the data stage stores, and reads back


def store_real_mocap(data_args: DataArguments, folder: Path) -> tuple[dict, list]:
    """Store every real source the recipe names as SMPL-22 joints at 20 fps under `folder` (the data stage's), with the
    rows the later stages read (`cmu.json`, `real.json`, their held-out twins, the vocabulary clips and the sequences).
    Returns the stage's info about them and the training motions, for the normalisation fit (no re-reading of files)."""
    import numpy as np
    from tqdm.auto import tqdm

    from humocon_hf.io_utils import write_json_atomic

    info: dict = {}
    real_motions: list[np.ndarray] = []

    # Real CMU trials: captions for stage 2, action questions for stage 3, motions for stage 1; the trials of the
    # held-out subjects go to cmu_heldout.json only (the `real_cmu` evaluation), never to training.
    cmu_rows, heldout_rows = [], []
    holdout = set(data_args.cmu_holdout_subjects or ())
    bvh_dir, csv = resolve_cmu(data_args)
    if bvh_dir is not None:
        from humocon_hf.data.real_mocap import load_cmu_bvh

        (folder / "cmu").mkdir(exist_ok=True)
        for row in tqdm(load_cmu_bvh(bvh_dir, csv), desc="CMU BVH -> SMPL-22 joints", unit="trial"):
            fps = {"source_fps": row["source_fps"]} if row.get("source_fps") else {}
            labels = {"action": row["action"], "subject": row["subject"]}
            if row["subject"] in holdout:
                heldout_rows += _store_take(data_args, folder, real_motions, "cmu", row, fps, labels, train=False)
            else:
                cmu_rows += _store_take(data_args, folder, real_motions, "cmu", row, fps, labels)
    write_json_atomic(folder / "cmu.json", cmu_rows)
    write_json_atomic(folder / "cmu_heldout.json", heldout_rows)
    info["cmu_trials"] = len(cmu_rows)
    info["cmu_heldout_trials"] = len(heldout_rows)
    info["cmu_heldout_subjects"] = sorted(holdout)
    info["cmu_source"] = str(bvh_dir) if bvh_dir else None

    # Labelled real mocap of other actors and studios (HDM05 ASF/AMC, Bandai Namco BVH): facts for every stage;
    # the recipe's held-out actors / styles go to real_heldout.json only (the real-motion lines), never to training.
    real_rows, real_heldout = [], []
    takes = labelled_real_takes(data_args)
    for take in tqdm(takes, desc="real mocap -> SMPL-22 joints", unit="take"):
        (folder / take["dataset"]).mkdir(exist_ok=True)
        facts = {k: take[k] for k in ("action", "body_part", "direction", "turn", "veer", "dataset", "group",
                                      "label")}
        stored = _store_take(data_args, folder, real_motions, take["dataset"], take, take["load_kwargs"], facts,
                             train=not take["heldout"])
        (real_heldout if take["heldout"] else real_rows).extend(stored)
    real_heldout += [{**r, "dataset": "cmu"} for r in heldout_rows]
    if data_args.vocabulary_clips_per_kind:
        info.update(store_vocabulary_clips(data_args, folder, real_rows, real_motions))
    if data_args.real_sequences:
        info.update(store_real_sequences(data_args, folder, cmu_rows + real_rows, real_heldout))
    write_json_atomic(folder / "real.json", real_rows)
    write_json_atomic(folder / "real_heldout.json", real_heldout)
    info["real_takes"] = {name: sum(1 for t in takes if t["dataset"] == name and not t["heldout"])
                          for name in sorted({t["dataset"] for t in takes})}
    info["real_heldout_takes"] = {name: sum(1 for r in real_heldout if r["dataset"] == name)
                                  for name in sorted({r["dataset"] for r in real_heldout})}
    info["bandai_takes"] = sum(1 for r in real_rows if r["dataset"] == "bandai")
    info["hdm05_clips"] = sum(1 for r in real_rows if r["dataset"] == "hdm05")
    return info, real_motions


def _store_take(data_args: DataArguments, folder: Path, real_motions: list, subfolder: str, take: dict,
                fps_kwargs: dict, labels: dict, train: bool = True) -> list[dict]:
    """Load one real take as SMPL-22 joints at 20 fps and save it (and, for training, its mirror twin with labels
    mirrored). A held-out take (`train=False`) stays out of the normalisation fit (`real_motions`)."""
    import numpy as np

    from humocon_hf.data.augmentation import mirror_joints, mirror_text
    from humocon_hf.data.real_motion_qa import resolve_sided_part
    from humocon_hf.processing.motion_io import load_motion

    try:
        joints = load_motion(take["motion_path"], fps=20.0, **fps_kwargs).joints[: data_args.max_frames * 4]
    except (ValueError, FileNotFoundError) as err:  # a file the reader cannot map: skip, say so
        logger.warning("skipping %s: %s", take["motion_path"], err)
        return []
    if str(labels.get("body_part") or "").startswith("?"):  # a side the labels do not say: read it here
        labels = {**labels, "body_part": resolve_sided_part(labels["body_part"], joints)}
    twins = [("", joints.astype(np.float32), take["caption"], labels)]
    if data_args.mirror_train and train:
        twins.append(("M", mirror_joints(joints), mirror_text(take["caption"]),
                      {k: mirror_text(v) if isinstance(v, str) else v for k, v in labels.items()}))
    rows = []
    for prefix, motion, caption, extra in twins:
        path = folder / subfolder / f"{prefix}{take['id']}.npy"
        np.save(path, motion)
        if train:
            real_motions.append(motion)
        rows.append({"id": f"{prefix}{take['id']}", "caption": caption, "motion_path": str(path),
                     "source": take["motion_path"], **extra, **({"mirrored": True} if prefix else {})})
    return rows


def store_vocabulary_clips(data_args: DataArguments, folder: Path, real_rows: list[dict], real_motions: list) -> dict:
    """Procedural clips of what real motion is asked about and no source here shows (a raised hand, both hands, a
    turn): the training ones join `real_rows` and are trained on like the real takes; the held-out ones (other
    people's) go to `vocabulary_heldout.json`, their own line, never evaluated as real."""
    import numpy as np

    from humocon_hf.data.procedural_vocabulary import vocabulary_takes
    from humocon_hf.io_utils import write_json_atomic

    (folder / "vocabulary").mkdir(exist_ok=True)
    per_kind = data_args.vocabulary_clips_per_kind
    heldout_vocabulary = []
    for split, count, rows in (("train", per_kind, real_rows), ("heldout", max(1, per_kind // 2), heldout_vocabulary)):
        for clip_id, joints, facts in vocabulary_takes(count, data_args.seed, split=split):
            path = folder / "vocabulary" / f"{clip_id}.npy"
            np.save(path, joints)
            if split == "train":
                real_motions.append(joints)
            rows.append({"id": clip_id, "motion_path": str(path), "source": "procedural", **facts,
                         "dataset": "vocabulary", "group": None})
    write_json_atomic(folder / "vocabulary_heldout.json", heldout_vocabulary)
    return {"vocabulary_clips": sum(1 for r in real_rows if r["dataset"] == "vocabulary"),
            "vocabulary_heldout_clips": len(heldout_vocabulary)}


def store_real_sequences(data_args: DataArguments, folder: Path, train_rows: list[dict],
                         heldout_rows: list[dict]) -> dict:
    """Sequences of 2-3 real takes with before / after / in-between questions: `data.real_sequences` from the
    training takes for stage 3 (`sequences_train.json`), a quarter as many from the held-out takes for their line
    (`sequences_heldout.json`). The procedural vocabulary clips are not real takes and are left out."""
    import numpy as np

    from humocon_hf.data.real_sequences import sample_sequences
    from humocon_hf.io_utils import write_json_atomic

    (folder / "sequences").mkdir(exist_ok=True)
    info = {}
    for split, rows, count in (("train", train_rows, data_args.real_sequences),
                               ("heldout", heldout_rows, max(1, data_args.real_sequences // 4))):
        # The held-out draw is the same for every seed of a recipe, so seeds pair on the same questions.
        rng = np.random.default_rng([data_args.seed if split == "train" else 0, 4241])
        takes = [{**r, "joints": np.load(r["motion_path"])} for r in rows
                 if r.get("action") and r.get("dataset") != "vocabulary"]
        questions = []
        for i, (joints, facts, _, asked) in enumerate(sample_sequences(takes, count, rng, data_args.max_frames)):
            path = folder / "sequences" / f"{split}_{i:04d}.npy"
            np.save(path, joints)
            for k, q in enumerate(asked):
                questions.append({"id": f"sequence_{split}_{i:04d}:{k}", "question": q["question"],
                                  "answer": q["answer"], "query_type": q["query_type"],
                                  "relation_type": q["relation_type"], "motion_path": str(path),
                                  "takes": [f["id"] for f in facts], "dataset": "sequences",
                                  "phrasing": "trained", "options": None})
        write_json_atomic(folder / f"sequences_{split}.json", questions)
        info[f"sequences_{split}_questions"] = len(questions)
    return info


def load_stored_data(folder: Path):
    """What the data stage stored in `folder`: the QA splits and the real training rows (CMU trials, other real takes
    and the vocabulary clips)."""
    import json

    import datasets

    qa = datasets.load_from_disk(str(folder / "qa"))
    real_rows = [{**r, "dataset": "cmu"} for r in json.loads((folder / "cmu.json").read_text())]
    if (folder / "real.json").is_file():
        real_rows += json.loads((folder / "real.json").read_text())
    return qa, real_rows


def _stored_rows(path: Path) -> list[dict]:
    import json

    return json.loads(path.read_text()) if path.is_file() else []


def heldout_line_questions(folder: Path) -> list[dict]:
    """Questions about every held-out real take the data stage stored in `folder` (HDM05 actors, Bandai styles, CMU
    subjects), in trained phrasings and in paraphrases."""
    return heldout_real_questions(_stored_rows(folder / "real_heldout.json"))


def extra_line_questions(folder: Path, name: str) -> list[dict]:
    """The questions of a held-out line of `reporting.EXTRA_LINES`: about the vocabulary clips' facts (trained
    phrasings and paraphrases), or the sequences' own before / after / in-between questions."""
    from humocon_hf.pipeline.reporting import EXTRA_LINES

    rows = _stored_rows(folder / EXTRA_LINES[name][0])
    return heldout_real_questions(rows) if name == "vocabulary" else rows


def heldout_cmu_questions(folder: Path) -> list[dict]:
    """"What is the person doing?" about every held-out CMU trial whose description names an action."""
    return [{"id": r["id"], "question": HELD_OUT_ACTION_QUESTION, "answer": r["action"],
             "motion_path": r["motion_path"], "query_type": "action"}
            for r in _stored_rows(folder / "cmu_heldout.json") if r.get("action")]


def datasets_used(data_info: dict) -> list[str]:
    """The Hub names of the data sets a run trained on, from the data stage's info (for the model card)."""
    used = ["humocon-procedural-motion-qa"]
    if data_info.get("cmu_trials"):
        used.append("cmu-mocap")
    if data_info.get("bandai_takes"):
        used.append("bandai-namco-motiondataset")
    if data_info.get("hdm05_clips"):
        used.append("hdm05")
    return used
