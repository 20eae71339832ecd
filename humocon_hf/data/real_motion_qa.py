"""Questions about real motion capture: what each labelled real source says a clip shows, and how to ask about it.

Every real clip becomes a row of *facts* in one schema, whatever its source:

* ``action``: the benchmark's answer word ("kick", "squat", "take/pick something up"; BABEL-QA's vocabulary where it
  has the word, plus what real motion needs: "lie down", "bow", "punch", "arm circles"), or None;
* ``body_part``: "left leg", "right hand", "both arms", ... or None;
* ``direction``: forward / backwards / left / right, for locomotion that goes one way, or None;
* ``turn``: "left" / "right" for a clip that turns (jogging on a left circle), or None;
* ``veer``: "left" / "right" for locomotion that goes forward and off to one side without turning, or None;
* ``caption``: a sentence for stage 2 and for "Describe the motion.".

Sources: HDM05 (actions and sides from the file names, :func:`load_hdm05`), the Bandai Namco Research Motiondataset 1
(content / style labels; the side of a one-handed wave, a kick or a punch is read from the motion, since the labels do
not say it: :func:`infer_active_side`) and CMU (trial descriptions, :mod:`.real_mocap`).

:func:`real_questions` turns the facts into questions in many phrasings: the "trained" templates that stage 3 sees, and
"paraphrase" templates that only the evaluation asks, so that robustness to new phrasings is measured, not assumed.
Questions that list their options ("left or right?") are answered by one of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from humocon_hf.processing.smpl22 import JOINT_INDEX

__all__ = [
    "HDM05_ACTIONS",
    "REAL_ACTION_WORDS",
    "BANDAI_FACTS",
    "CAPTION_QUESTIONS",
    "answer_in_options",
    "infer_active_side",
    "load_hdm05",
    "options_text",
    "real_questions",
    "resolve_sided_part",
]

# HDM05 action in the file name -> (caption phrase, action answer, body part, turn). Sides come from the names
# (kickLFront: left leg; depositFloorR / grabHighR: right hand; jogLeftCircle: turning left).
HDM05_ACTIONS: dict[str, tuple[str, str | None, str | None, str | None]] = {
    "depositFloorR": ("bends down and places something on the floor with the right hand", "place something",
                      "right hand", None),
    "grabHighR": ("reaches up and takes something from a high place with the right hand", "take/pick something up",
                  "right hand", None),
    "throwBasketball": ("throws a basketball with both arms", "throw", "both arms", None),
    "kickLFront1Reps": ("kicks to the front with the left leg", "kick", "left leg", None),
    "hopBothLegs1hops": ("hops once on both legs", "jump", "both legs", None),
    "jogLeftCircle4StepsRstart": ("jogs on a circle, turning left", "jog", None, "left"),
    "sneak2StepsLStart": ("sneaks forward in a crouch", "walk", None, None),
    "squat1Reps": ("does a squat", "squat", None, None),
    "lieDownFloor": ("lies down on the floor", "lie down", None, None),
    "elbowToKnee1RepsLelbowStart": ("touches the left elbow to the right knee, then the right elbow to the left knee",
                                    None, None, None),
    "rotateArmsBothBackward1Reps": ("circles both arms backwards", "arm circles", "both arms", None),
}
_HDM05_FILE = re.compile(r"^HDM_(?P<actor>[a-z]{2})_(?P<action>[A-Za-z0-9]+)_(?P<take>\d+)_(?P<fps>\d+)$")

# Answer words of real-motion questions beyond BABEL-QA's: the distractors of option questions are drawn from these.
REAL_ACTION_WORDS = (
    "walk", "jog", "run", "jump", "kick", "squat", "throw", "wave", "punch", "bow", "lie down",
    "take/pick something up", "place something", "arm circles", "jumping jacks", "crawl", "sit", "stand up", "dance",
)  # fmt: skip


def infer_active_side(joints: np.ndarray, limb: str, min_ratio: float = 1.5) -> str | None:
    """Which side's ``limb`` ("arm" or "leg") does the action, from SMPL-22 joints (T, 22, 3), Y up: "left", "right",
    or None when neither moves clearly more (``min_ratio``). Arms: the path the wrist travels relative to the pelvis
    plus how far it rises above the shoulder (a wave, a punch, a beckoning hand). Legs: how high the ankle rises above
    its lowest point (a kick)."""
    joints = np.asarray(joints, dtype=np.float64)
    scores = {}
    for side in ("left", "right"):
        if limb == "arm":
            rel = joints[:, JOINT_INDEX[f"{side}_wrist"]] - joints[:, JOINT_INDEX["pelvis"]]
            path = np.linalg.norm(np.diff(rel, axis=0), axis=-1).sum()
            raise_ = np.maximum(joints[:, JOINT_INDEX[f"{side}_wrist"], 1] - joints[:, JOINT_INDEX[f"{side}_shoulder"], 1]
                                + 0.3, 0).max()
            scores[side] = path + 2.0 * raise_
        elif limb == "leg":
            ankle = joints[:, JOINT_INDEX[f"{side}_ankle"], 1]
            scores[side] = float(ankle.max() - ankle.min())
        else:
            raise ValueError(f"infer_active_side: limb must be 'arm' or 'leg', got {limb!r}")
    left, right = scores["left"], scores["right"]
    if left >= min_ratio * right:
        return "left"
    if right >= min_ratio * left:
        return "right"
    return None


def load_hdm05(folder: str | Path) -> list[dict]:
    """HDM05 ASF/AMC clips in ``folder`` (``HDM_<actor>_<action>_<take>_<fps>.amc`` beside ``HDM_<actor>.asf``): one
    row per clip with ``id``, ``actor``, ``motion_path``, ``source_fps`` and the facts of :data:`HDM05_ACTIONS`.
    Clips of actions not in the table are skipped (their labels are unknown here)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: HDM05 folder not found")
    rows = []
    for path in sorted(root.glob("*.amc")):
        match = _HDM05_FILE.match(path.stem)
        if match is None or match.group("action") not in HDM05_ACTIONS:
            continue
        phrase, action, body_part, turn = HDM05_ACTIONS[match.group("action")]
        caption = f"a person {phrase}"
        rows.append({"id": f"hdm05_{path.stem}", "actor": match.group("actor"), "motion_path": str(path),
                     "source_fps": float(match.group("fps")), "caption": caption, "action": action,
                     "body_part": body_part, "direction": None, "turn": turn, "veer": None,
                     "label": match.group("action")})
    if not rows:
        raise ValueError(f"{root}: no HDM05 clips named HDM_<actor>_<action>_<take>_<fps>.amc with a known action")
    return rows


# Bandai Namco Research Motiondataset 1 content -> (action, body part or the limb whose side is read from the motion
# as "?hand" / "?arm" / "?leg", direction, veer). walk-left / walk-right go forward and off to that side without
# turning (measured: heading within 20 degrees, sideways 1.6-3.4 m over the take).
BANDAI_FACTS: dict[str, tuple[str | None, str | None, str | None, str | None]] = {
    "walk": ("walk", None, "forward", None),
    "walk-back": ("walk", None, "backwards", None),
    "walk-left": ("walk", None, None, "left"),
    "walk-right": ("walk", None, None, "right"),
    "run": ("run", None, "forward", None),
    "dash": ("run", None, "forward", None),
    "bow": ("bow", None, None, None),
    "bye": ("wave", "?hand", None, None),
    "byebye": ("wave", "both hands", None, None),
    "guide": (None, "?hand", None, None),
    "respond": (None, None, None, None),
    "call": (None, "?hand", None, None),
    "punch": ("punch", "?arm", None, None),
    "kick": ("kick", "?leg", None, None),
    "slash": (None, "?arm", None, None),
    "dance-long": ("dance", None, None, None),
    "dance-short": ("dance", None, None, None),
}


def resolve_sided_part(part: str | None, joints: np.ndarray) -> str | None:
    """A body part fact with its side read from the motion ("?hand" -> "right hand"), None when the motion does not
    say it clearly; other values unchanged."""
    if not part or not part.startswith("?"):
        return part
    limb = part[1:]
    side = infer_active_side(joints, "leg" if limb in ("leg", "foot") else "arm")
    return f"{side} {limb}" if side else None


# ------------------------------------------------------------------------------------------------ questions

# (trained phrasings, paraphrases only the evaluation asks).
_ACTION_Q = (
    ("What is the person doing?", "What action does the person do?", "What does the person do?",
     "What action does the person perform?", "Which action is this?"),
    ("What movement is this person making?", "Name the action in this motion.", "What activity is shown here?"),
)
_BODY_PART_Q = (
    # Not BABEL-QA's "What body part does the person use while they {action}?": the procedural benchmark asks that
    # about one segment of a sequence with its own conventions (a one-footed hop's foot, a one-armed throw); asked
    # about a real two-legged hop or two-handed throw it taught conflicting answers (seed 0: procedural body part
    # 80.7% -> 52.6%).
    ("What body part does the person use?", "Which body part does the person use?", "Which body part moves?",
     "Which body part does the action?"),
    ("Which part of the body does the person move?", "With which body part is the action done?"),
)
_DIRECTION_Q = (
    ("What direction does the person move?", "Which direction does the person move in?",
     "In what direction does the person go?"),
    ("Where does the person head: which direction?", "In which direction is the person travelling?"),
)
# Option questions: answered by one of the options they list.
_SIDE_OPTION_Q = (
    ("Which {limb} does the person use, left or right?", "Left or right: which {limb} moves?",
     "Which {limb}, the left {limb} or the right {limb}?", "Is it the left {limb} or the right {limb}?",
     "Which {limb} does the action, left or right?"),
    ("Does the person use the left {limb} or the right {limb}?",),
)
_TURN_OPTION_Q = (
    ("Which way does the person turn, left or right?", "Does the person turn left or right?",
     "Left or right: which way is the turn?"),
    ("Is the person turning to the left or to the right?",),
)
_VEER_OPTION_Q = (
    ("Does the person go towards the left or the right?", "Left or right: which way does the person go?",
     "Which side does the person move towards, left or right?"),
    ("Is the person heading to the left or to the right?",),
)
_ACTION_OPTION_Q = (
    ("Which of these does the person do: {options}?", "Is the person doing {options}?",
     "Choose the action: {options}.", "{options}: which one is the person doing?"),
    ("Pick one: {options}. What is the person doing?",),
)
CAPTION_QUESTIONS = ("Describe the motion.", "Describe what the person does.")


def options_text(options: Sequence[str]) -> str:
    """How a question lists its options: "a, b or c"."""
    return ", ".join(options[:-1]) + " or " + options[-1] if len(options) > 1 else options[0]


def answer_in_options(prediction: str, options: Sequence[str]) -> bool:
    """Whether a free-form answer names exactly one of the options it was offered ("right" to "the left hand or the
    right hand?" does; "forward" to "left or right?" does not): `humocon_hf.evaluation.resolve_option`."""
    from humocon_hf.evaluation import resolve_option

    return resolve_option(prediction, options) is not None


def real_questions(row: Mapping, phrasing: str, rng: np.random.Generator, *, per_type: int = 1,
                   captions: bool = False, action_words: Sequence[str] = REAL_ACTION_WORDS) -> list[dict]:
    """Questions about one real clip's facts. ``phrasing``: "trained" (stage 3's templates) or "paraphrase" (templates
    only the evaluation uses). Each question row: ``question``, ``answer``, ``query_type`` (action / direction /
    body_part, the metric's), ``options`` (the offered answers, or None), ``phrasing``. ``per_type`` templates are
    drawn per fact; ``captions`` adds "Describe the motion." with the caption (training only: open answers);
    ``action_words``: the answer words the distractors of action option questions are drawn from."""
    if phrasing not in ("trained", "paraphrase"):
        raise ValueError(f"phrasing must be 'trained' or 'paraphrase', got {phrasing!r}")
    k = 0 if phrasing == "trained" else 1
    out: list[dict] = []

    def pick(templates: Sequence[str], n: int) -> list[str]:
        n = min(n, len(templates))
        return [templates[i] for i in rng.choice(len(templates), size=n, replace=False)]

    def add(question: str, answer: str, query_type: str, options: Sequence[str] | None = None) -> None:
        out.append({"question": question, "answer": answer, "query_type": query_type,
                    "options": list(options) if options else None, "phrasing": phrasing})

    action = row.get("action")
    if action:
        for q in pick(_ACTION_Q[k], per_type):
            add(q, action, "action")
        distractors = [w for w in action_words if w != action]
        options = [action] + [distractors[i] for i in rng.choice(len(distractors), size=2, replace=False)]
        options = [options[i] for i in rng.permutation(len(options))]
        for q in pick(_ACTION_OPTION_Q[k], per_type):
            add(q.format(options=options_text(options)), action, "action", options)
    part = row.get("body_part")
    if part:
        for q in pick(_BODY_PART_Q[k], per_type):
            add(q, part, "body_part")
        side, _, limb = part.partition(" ")
        if side in ("left", "right") and limb in ("hand", "arm", "leg", "foot"):
            for q in pick(_SIDE_OPTION_Q[k], per_type):
                if "the left {limb} or the right {limb}" in q:
                    add(q.format(limb=limb), f"{side} {limb}", "body_part", [f"left {limb}", f"right {limb}"])
                else:
                    add(q.format(limb=limb), side, "body_part", ["left", "right"])
    direction = row.get("direction")
    if direction:
        for q in pick(_DIRECTION_Q[k], per_type):
            add(q, direction, "direction")
    turn = row.get("turn")
    if turn:
        for q in pick(_TURN_OPTION_Q[k], per_type):
            add(q, turn, "direction", ["left", "right"])
    veer = row.get("veer")
    if veer:
        for q in pick(_VEER_OPTION_Q[k], per_type):
            add(q, veer, "direction", ["left", "right"])
    if captions and row.get("caption"):
        caption = row["caption"]
        add(pick(CAPTION_QUESTIONS, 1)[0], caption[0].upper() + caption[1:] + ".", "caption")
    return out
