"""BABEL-QA accuracy: overall, per query type and per relation type (the HuMoCon paper's Table 1 columns).

Load offline with ``evaluate.load("<path to this folder>")`` (``humocon_hf.metrics.babel_qa_accuracy.METRIC_PATH``).
This file is self-contained (imports only ``evaluate``/``datasets``/stdlib) because ``evaluate`` copies it
into its module cache on load.

Answer normalisation (applied to predictions and references alike, see ``normalize_answer``):

1. lowercase; ``_``/``-`` become spaces; punctuation other than ``/`` is dropped; whitespace collapsed;
2. a leading answer frame is dropped: "answer:", "the answer is", "the person", "they", "he", "she",
   "is", "are", "does", "moves", "uses" (so "The person moves backward." -> "backward"), and only the
   first sentence / line of a long generation is kept;
3. articles and possessives are dropped: "a", "an", "the", "their", "his", "her", "its", "person's";
4. words are mapped through ``WORD_SYNONYMS`` (inflections and plurals: "walking" -> "walk",
   "hands" -> "hand", "backward" -> "backwards", "forwards" -> "forward", ...);
5. the whole phrase is mapped through ``PHRASE_SYNONYMS`` ("sit down" -> "sit", "pick up" ->
   "take/pick something up", "jumping jack" -> "jumping jacks", ...);
6. a side + body-part pair is put in "side part" order ("hand left" -> "left hand").

Synonym table (canonical BABEL-QA answer <- accepted variants after steps 1-4):

=========================  =====================================================================
canonical                  variants
=========================  =====================================================================
walk                       walks, walking, walked
run                        runs, running, ran
jog                        jogs, jogging, jogged
jump                       jumps, jumping, jumped, hop, hops, hopping
jumping jacks              jumping jack, do jumping jacks
crawl                      crawls, crawling, crawled
sit                        sit down, sits (down), sitting (down), sat (down)
stand up                   stands up, standing up, stood up, get up, gets up, getting up, rise, rises
squat                      squats, squatting, squatted, squat down
crouch                     crouches, crouching, crouched, crouch down
kneel                      kneels, kneeling, knelt, kneel down
kick                       kicks, kicking, kicked
throw                      throws, throwing, threw, toss, tosses
catch                      catches, catching, caught
knock                      knocks, knocking, knocked
wave                       waves, waving, waved
cartwheel                  cartwheels, do a cartwheel
flail arms                 flail arm
flip                       flips, flipping
take/pick something up     pick up, picks up, picking up, pick something up, take something,
                           take something up, take, pick up something, take/pick up, grab something
place something            place, places, placing, put something down, put down, place something down
forward                    forwards, ahead, move forward
backwards                  backward, back, move backwards
left                       to the left, leftward(s), move left
right                      to the right, rightward(s), move right
left/right hand|arm|leg|foot  plural (hands, arms, legs, feet) and reversed order ("hand left")
=========================  =====================================================================

Relation types: "before", "after", "in between" (also written "in_between") and "none"; the paper's
"Other" column pools "in between" and "none".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import datasets
import evaluate

QUERY_TYPES = ("action", "direction", "body_part")
RELATION_TYPES = ("before", "after", "in_between", "none")

_CITATION = """\
HuMoCon: Concept Discovery for Human Motion Understanding (CVPR 2025); BABEL-QA question set from
"Neural Symbolic Pose" / IMoRe (BABEL annotations, babel.is.tue.mpg.de).
"""

_DESCRIPTION = """\
Exact-match accuracy of BABEL-QA answers after answer normalisation and synonym mapping, overall and
split by query type (action / direction / body part) and relation type (before / after / in between /
none, with "other" = in between + none as in the paper's table).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): generated answers.
    references (`list[str]`): ground-truth answers (BABEL-QA answer vocabulary).
    query_types (`list[str]`, *optional*): "action" / "direction" / "body_part" per example.
    relation_types (`list[str]`, *optional*): "before" / "after" / "in between" / "none" per example.
Returns:
    accuracy (`float`): overall accuracy in [0, 1]; and, when the types are given, one accuracy per
    query type and per relation type ("action", "direction", "body_part", "before", "after",
    "in_between", "none", "other"; `None` where a group is empty) plus "counts" (examples per group).
Examples:
    >>> metric = evaluate.load("path/to/babel_qa_accuracy")
    >>> metric.compute(predictions=["Walking."], references=["walk"], query_types=["action"])["accuracy"]
    1.0
"""

# Step 4: single-word variants -> canonical word.
WORD_SYNONYMS: dict[str, str] = {
    "walks": "walk", "walking": "walk", "walked": "walk",
    "runs": "run", "running": "run", "ran": "run",
    "jogs": "jog", "jogging": "jog", "jogged": "jog",
    "jumps": "jump", "jumped": "jump", "hop": "jump", "hops": "jump", "hopping": "jump",
    "crawls": "crawl", "crawling": "crawl", "crawled": "crawl",
    "sits": "sit", "sitting": "sit", "sat": "sit",
    "stands": "stand", "standing": "stand", "stood": "stand",
    "squats": "squat", "squatting": "squat", "squatted": "squat",
    "crouches": "crouch", "crouching": "crouch", "crouched": "crouch",
    "kneels": "kneel", "kneeling": "kneel", "knelt": "kneel", "kneeled": "kneel",
    "kicks": "kick", "kicking": "kick", "kicked": "kick",
    "throws": "throw", "throwing": "throw", "threw": "throw", "toss": "throw", "tosses": "throw",
    "catches": "catch", "catching": "catch", "caught": "catch",
    "knocks": "knock", "knocking": "knock", "knocked": "knock",
    "waves": "wave", "waving": "wave", "waved": "wave",
    "cartwheels": "cartwheel",
    "flips": "flip", "flipping": "flip", "flipped": "flip",
    "picks": "pick", "picking": "pick", "picked": "pick",
    "takes": "take", "taking": "take", "took": "take",
    "places": "place", "placing": "place", "placed": "place",
    "puts": "put", "putting": "put",
    "gets": "get", "getting": "get", "got": "get",
    "rises": "rise", "rising": "rise", "rose": "rise",
    "grabs": "grab", "grabbing": "grab", "grabbed": "grab",
    "moves": "move", "moving": "move", "moved": "move",
    "backward": "backwards", "forwards": "forward",
    "leftward": "left", "leftwards": "left", "rightward": "right", "rightwards": "right",
    "hands": "hand", "arms": "arm", "legs": "leg", "feet": "foot", "foots": "foot",
}

# Step 5: whole-phrase variants -> canonical answer.
PHRASE_SYNONYMS: dict[str, str] = {
    "jump": "jump",
    "jumping jack": "jumping jacks", "jumping jacks": "jumping jacks", "do jumping jacks": "jumping jacks",
    "jumping": "jump",
    "flail arm": "flail arms",
    "sit down": "sit", "sit": "sit",
    "stand up": "stand up", "get up": "stand up", "rise": "stand up", "rise up": "stand up",
    "squat down": "squat", "crouch down": "crouch", "kneel down": "kneel",
    "do cartwheel": "cartwheel",
    "pick up": "take/pick something up", "pick something up": "take/pick something up",
    "pick up something": "take/pick something up", "take something": "take/pick something up",
    "take something up": "take/pick something up", "take": "take/pick something up",
    "take up": "take/pick something up", "take/pick up": "take/pick something up",
    "take/pick something up": "take/pick something up", "grab something": "take/pick something up",
    "grab": "take/pick something up", "pick": "take/pick something up",
    "place": "place something", "place something": "place something",
    "place something down": "place something", "put something down": "place something",
    "put down": "place something", "put down something": "place something",
    "ahead": "forward", "move forward": "forward", "forward": "forward",
    "back": "backwards", "move backwards": "backwards", "backwards": "backwards",
    "to left": "left", "move left": "left", "move to left": "left", "left": "left",
    "to right": "right", "move right": "right", "move to right": "right", "right": "right",
}

_SIDES = ("left", "right")
_PARTS = ("hand", "arm", "leg", "foot")
_ARTICLES = {"a", "an", "the", "their", "his", "her", "its", "persons"}
# Leading words of an answer sentence that carry no answer ("The person moves left" -> "left").
_LEAD_IN = re.compile(
    r"^(?:(?:the\s+)?answer(?:\s+is)?\s*:?\s+|the\s+person\s+|person\s+|they\s+|he\s+|she\s+|"
    r"is\s+|are\s+|does\s+|do\s+|uses\s+|use\s+|using\s+|with\s+)+"
)
_PUNCT = re.compile(r"[^\w\s/]")


def _first_sentence(text: str) -> str:
    text = text.strip().splitlines()[0] if text.strip() else ""
    # Cut at the first sentence end, but keep "e.g."-free short answers intact.
    match = re.search(r"[.!?;](\s|$)", text)
    return text[: match.start()] if match else text


def normalize_answer(text: str) -> str:
    """Map a free-form answer to its canonical BABEL-QA form (see the module docstring for the rules)."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise ValueError(f"answers must be strings, got {type(text).__name__}: {text!r}")
    text = _first_sentence(text.lower())
    text = text.replace("_", " ").replace("-", " ")
    text = re.sub(r"['\u2019]s\b", "s", text)  # "person's" -> "persons" (dropped below)
    text = _PUNCT.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = _LEAD_IN.sub("", text)
    words = [w for w in text.split() if w not in _ARTICLES]
    words = [WORD_SYNONYMS.get(w, w) for w in words]
    # "move" is a frame word for directions ("moves backwards"); keep it only when it is the answer.
    if len(words) > 1 and words[0] == "move" and " ".join(words) not in PHRASE_SYNONYMS:
        words = words[1:]
    if len(words) == 2 and words[0] in _PARTS and words[1] in _SIDES:
        words = [words[1], words[0]]
    phrase = " ".join(words)
    return PHRASE_SYNONYMS.get(phrase, phrase)


def _canonical_relation(value: str | None) -> str:
    if value is None:
        return "none"
    key = str(value).strip().lower().replace(" ", "_").replace("-", "_")
    if key in ("", "other"):
        key = "none"
    if key not in RELATION_TYPES:
        raise ValueError(f"unknown relation type {value!r}; expected one of before / after / in between / none")
    return key


def _canonical_query(value: str) -> str:
    key = str(value).strip().lower().replace(" ", "_").replace("-", "_")
    if key not in QUERY_TYPES:
        raise ValueError(f"unknown query type {value!r}; expected one of action / direction / body_part")
    return key


def _check_lengths(n: int, name: str, values: Sequence | None) -> None:
    if values is not None and len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries but there are {n} predictions")


def compute_babel_qa_accuracy(
    predictions: Sequence[str],
    references: Sequence[str],
    query_types: Sequence[str] | None = None,
    relation_types: Sequence[str] | None = None,
) -> dict:
    """Accuracy overall and per group; a group with no examples reports `None` (not 0)."""
    n = len(predictions)
    if len(references) != n:
        raise ValueError(f"got {n} predictions but {len(references)} references")
    if n == 0:
        raise ValueError("no predictions to score")
    _check_lengths(n, "query_types", query_types)
    _check_lengths(n, "relation_types", relation_types)
    correct = [normalize_answer(p) == normalize_answer(r) for p, r in zip(predictions, references)]

    def acc(mask: list[bool]) -> float | None:
        total = sum(mask)
        return None if total == 0 else sum(c for c, m in zip(correct, mask) if m) / total

    results: dict = {"accuracy": sum(correct) / n}
    counts: dict = {"total": n}
    if query_types is not None:
        qts = [_canonical_query(q) for q in query_types]
        for q in QUERY_TYPES:
            mask = [x == q for x in qts]
            results[q] = acc(mask)
            counts[q] = sum(mask)
    if relation_types is not None:
        rts = [_canonical_relation(r) for r in relation_types]
        for r in RELATION_TYPES:
            mask = [x == r for x in rts]
            results[r] = acc(mask)
            counts[r] = sum(mask)
        mask = [x in ("in_between", "none") for x in rts]
        results["other"] = acc(mask)
        counts["other"] = sum(mask)
    results["counts"] = counts
    for key, value in results.items():
        if isinstance(value, float) and math.isnan(value):  # pragma: no cover - defensive
            results[key] = None
    return results


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BabelQaAccuracy(evaluate.Metric):
    """`evaluate` wrapper around `compute_babel_qa_accuracy`."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://github.com/DwanZhang-AI/IMoRe", "https://babel.is.tue.mpg.de"],
        )

    def _compute(self, predictions, references, query_types=None, relation_types=None):
        return compute_babel_qa_accuracy(predictions, references, query_types, relation_types)
