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
    that makes the answer one of the options. Other rows are returned unchanged (same order, same count)."""
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
