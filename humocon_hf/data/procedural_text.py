"""The text side of the procedural motion-QA benchmark: BABEL-QA-style questions (with their programs) and captions,
made from a motion's segment labels (action, direction, body part); `procedural.py` draws the motions.

The question rules (which relations, when a question is unambiguous) are in `procedural.py`'s module docstring.
"""

from __future__ import annotations

import numpy as np

__all__ = ["QUERY_TYPES", "RELATION_TYPES", "enumerate_questions", "make_caption", "make_questions"]

QUERY_TYPES = ("action", "direction", "body_part")
RELATION_TYPES = ("none", "before", "after", "in between")

# How often each query type is drawn (relative), by `make_questions`.
_QUERY_WEIGHTS = {"action": 0.45, "direction": 0.25, "body_part": 0.3}


# ====================================================================================== questions


def _filter_phrase(kind: str, value: str) -> str:
    if kind == "action":  # nouns take "do" ("they do arm circles"; real takes' words beside the benchmark's)
        return f"they do {value}" if value in ("jumping jacks", "arm circles") else f"they {value}"
    if kind == "direction":
        return f"they move {value}"
    return f"they use {value}" if value.startswith("both ") else f"they use their {value}"


_QUERY_TEXT = {
    "action": "What action does the person do",
    "direction": "What direction does the person move",
    "body_part": "What body part does the person use",
}


def _unique_filters(segments: list[dict]) -> list[list[tuple[str, str]]]:
    """For each segment, the (kind, value) filters that select it and no other segment."""
    out = []
    for seg in segments:
        fl = []
        for kind in QUERY_TYPES:
            v = seg.get(kind)
            if v is not None and sum(s.get(kind) == v for s in segments) == 1:
                fl.append((kind, v))
        out.append(fl)
    return out


def enumerate_questions(segments: list[dict]) -> list[dict]:
    """Every unambiguous BABEL-QA-style question about a motion (see the module docstring)."""
    filters = _unique_filters(segments)
    qs = []

    def add(query, relation, answer_seg, parts, text_rel):
        answer = segments[answer_seg].get(query)
        if answer is None:
            return
        program = ["[0]=scene(motion_seq)"]
        refs = []
        for kind, value, rel in parts:
            program.append(f"[{len(program)}]=filter_{kind}([0], {value})")
            if rel is not None:
                program.append(f"[{len(program)}]=relate([{len(program) - 1}], {rel})")
            refs.append(len(program) - 1)
        if len(refs) > 1:
            program.append(f"[{len(program)}]=intersect([{', '.join(map(str, refs))}])")
        program.append(f"?=query_{query}([{len(program) - 1}])")
        qs.append(dict(question=f"{_QUERY_TEXT[query]} {text_rel}?", answer=answer, query_type=query,
                       relation_type=relation, program=program, answer_segment=answer_seg))  # fmt: skip

    n = len(segments)
    for i in range(n):
        for kind, value in filters[i]:
            ph = _filter_phrase(kind, value)
            for q in QUERY_TYPES:
                if q != kind:
                    add(q, "none", i, [(kind, value, None)], f"while {ph}")
                if i > 0:
                    add(q, "before", i - 1, [(kind, value, "before")], f"before {ph}")
                if i < n - 1:
                    add(q, "after", i + 1, [(kind, value, "after")], f"after {ph}")
    for i in range(1, n - 1):
        for ka, va in filters[i - 1]:
            for kb, vb in filters[i + 1]:
                pa, pb = _filter_phrase(ka, va), _filter_phrase(kb, vb)
                for q in QUERY_TYPES:
                    add(q, "in between", i, [(ka, va, "after"), (kb, vb, "before")], f"after {pa} and before {pb}")
                    add(q, "in between", i, [(kb, vb, "before"), (ka, va, "after")], f"before {pb} and after {pa}")
    return qs


def make_questions(segments: list[dict], rng: np.random.Generator, n: int) -> list[dict]:
    """Up to `n` distinct questions, spread over query and relation types."""
    cands = enumerate_questions(segments)
    groups: dict[tuple, list] = {}
    for c in cands:
        groups.setdefault((c["query_type"], c["relation_type"]), []).append(c)
    out = []
    while len(out) < n and groups:
        keys = sorted(groups)
        w = np.array([_QUERY_WEIGHTS[k[0]] for k in keys])
        key = keys[int(rng.choice(len(keys), p=w / w.sum()))]
        pool = groups[key]
        out.append(pool.pop(int(rng.integers(len(pool)))))
        if not pool:
            del groups[key]
    return out


# ====================================================================================== captions

_DIR_PHRASES = {
    "forward": ("forward",),
    "backwards": ("backwards", "backward"),
    "left": ("to the left", "sideways to the left", "to their left"),
    "right": ("to the right", "sideways to the right", "to their right"),
}
_COUNTS = {1: "once", 2: "twice", 3: "three times", 4: "four times"}


def _phrase(seg: dict, rng: np.random.Generator) -> str:
    a, d, bp = seg["action"], seg.get("direction"), seg.get("body_part")
    pick = lambda *opts: opts[int(rng.integers(len(opts)))]
    dp = pick(*_DIR_PHRASES[d]) if d else ""
    side = bp.split(" ")[0] if bp else ""
    if a == "walk":
        return pick(f"walks {dp}", f"steps {dp}") if d in ("left", "right") else f"walks {dp}"
    if a in ("jog", "run"):
        return f"{a}s {dp}"
    if a == "jump":
        if bp:
            return f"hops on the {bp}" + (" moving forward" if d == "forward" else pick(" in place", ""))
        return f"jumps {dp}" if d else pick("jumps in place", "jumps up and down")
    if a == "jumping jacks":
        return pick("does jumping jacks", "performs some jumping jacks")
    if a == "crawl":
        return pick("gets down and crawls forward on hands and knees", "crawls forward on all fours")
    if a == "wave":
        return pick(f"waves with the {bp}", f"waves the {bp}", f"raises the {bp} and waves")
    if a == "knock":
        return pick(f"knocks with the {bp}", f"knocks on something with the {bp}")
    if a == "catch":
        return pick(f"catches something with the {bp}", f"reaches out and catches something with the {bp}")
    if a == "throw":
        return pick(f"throws something with the {bp}", f"throws overhand with the {bp}")
    if a == "take/pick something up":
        return pick(f"picks something up with the {bp}", f"bends down and picks up an object with the {bp}")
    if a == "place something":
        return pick(f"places something down with the {bp}", f"puts an object down with the {bp}")
    if a == "kick":
        return pick(f"kicks with the {bp}", f"kicks the {side} leg forward")
    if a == "kneel":
        return pick(f"kneels down on the {side} knee", f"goes down on the {side} knee")
    if a == "squat":
        return pick("squats", "does a few squats", "squats down and up")
    if a == "crouch":
        return pick("crouches down", "crouches")
    if a == "sit":
        return pick("sits down", "sits down on a chair")
    if a == "stand up":
        return pick("stands up", "gets up")
    raise ValueError(f"no caption phrase for action {a!r}")


def make_caption(segments: list[dict], rng: np.random.Generator) -> str:
    """One English sentence describing the segments in order, e.g.
    "A person walks forward, then waves with the left hand."."""
    phrases = [_phrase(s, rng) for s in segments]
    subject = ("A person", "The person", "Someone")[int(rng.integers(3))]
    if len(phrases) == 1:
        body = phrases[0]
    elif len(phrases) == 2:
        body = f"{phrases[0]}, then {phrases[1]}"
    else:
        body = ", then ".join(phrases[:-1]) + f", and finally {phrases[-1]}"
    return f"{subject} {body}."
