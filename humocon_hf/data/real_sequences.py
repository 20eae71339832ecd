"""Real clips as the atoms of compositional questions: sequences of 2-3 real mocap takes joined into one motion, asked
BABEL-QA's before / after / in-between questions (:func:`.procedural_text.make_questions`) about their labelled facts.

BABEL-QA's temporal questions were asked only on procedural sequences, so "what does the person do after they kick?"
was learnt on the generator's kicks. Here each take is cut to the window where it moves most (so the action is in the
part kept), turned about the vertical and moved so that it starts where and facing how the previous one was at the
start of their overlap, and cross-faded over 0.3-0.6 s: the seam is a smooth change of pose and path, not a jump that
would mark the boundary. Training sequences are drawn from training takes only, held-out ones from held-out takes only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from humocon_hf.processing.feature_extraction_motion import heading_angles, rotate_y
from humocon_hf.processing.smpl22 import DEFAULT_FPS

from .procedural_actions import smooth
from .procedural_text import make_questions

__all__ = ["join_clips", "most_active_window", "sequence_questions", "sample_sequences"]


def most_active_window(joints: np.ndarray, length: int) -> np.ndarray:
    """The ``length`` frames of a clip whose joints move most (summed speed relative to the pelvis plus the pelvis's
    own speed): a kick, a throw or a squat is kept whole, the still start and end of a take dropped."""
    joints = np.asarray(joints)
    if len(joints) <= length:
        return joints
    rel = joints - joints[:, :1]
    speed = np.linalg.norm(np.diff(rel, axis=0), axis=-1).sum(-1) + np.linalg.norm(np.diff(joints[:, 0], axis=0), axis=-1)
    window = np.convolve(speed, np.ones(length - 1), mode="valid")
    start = int(np.argmax(window))
    return joints[start:start + length]


def join_clips(clips: Sequence[np.ndarray], blend_frames: Sequence[int]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """One motion from SMPL-22 clips (T_i, 22, 3): clip i+1 turned and moved so its first frame's pelvis and heading
    are those of clip i at the start of their ``blend_frames[i]``-frame overlap, the overlap cross-faded (cosine
    weights). Returns the joints and each clip's (start, end) frames, boundaries at the middle of the overlaps."""
    if len(clips) < 1 or len(blend_frames) != len(clips) - 1:
        raise ValueError(f"join_clips: expected n clips and n-1 blend lengths, got {len(clips)} and {len(blend_frames)}")
    out = np.asarray(clips[0], dtype=np.float64)
    bounds = [0]
    for clip, blend in zip(clips[1:], blend_frames):
        clip = np.asarray(clip, dtype=np.float64)
        blend = int(min(blend, len(out) - 1, len(clip) - 1))
        if blend < 1:
            raise ValueError(f"join_clips: clips too short to overlap ({len(out)} and {len(clip)} frames)")
        anchor = out[-blend]
        clip = rotate_y(clip, heading_angles(anchor) - heading_angles(clip[0]))
        clip[..., 0] += anchor[0, 0] - clip[0, 0, 0]
        clip[..., 2] += anchor[0, 2] - clip[0, 0, 2]
        w = smooth((np.arange(blend) + 0.5) / blend)[:, None, None]
        mixed = (1.0 - w) * out[-blend:] + w * clip[:blend]
        bounds.append(len(out) - blend + blend // 2)
        out = np.concatenate([out[:-blend], mixed, clip[blend:]])
    spans = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)] + [(bounds[-1], len(out))]
    return out.astype(np.float32), spans


def sequence_questions(facts: Sequence[Mapping], spans: Sequence[tuple[int, int]], rng: np.random.Generator,
                       n: int) -> list[dict]:
    """Up to ``n`` unambiguous BABEL-QA-style questions about a sequence whose segments have these facts (action,
    direction, body part of each take)."""
    segments = [{"action": f.get("action"), "direction": f.get("direction"), "body_part": f.get("body_part"),
                 "start": s, "end": e} for f, (s, e) in zip(facts, spans)]
    return [q for q in make_questions(segments, rng, n) if q["relation_type"] != "none"]


def sample_sequences(takes: Sequence[Mapping], count: int, rng: np.random.Generator, max_frames: int = 160,
                     fps: float = DEFAULT_FPS, questions_per_sequence: int = 3):
    """``count`` sequences of 2-3 distinct-action takes (rows with ``joints`` and facts), each fitting ``max_frames``:
    yields (joints, facts of its takes, spans, questions). Takes without an action are not used."""
    usable = [t for t in takes if t.get("action")]
    if len({t["action"] for t in usable}) < 2:
        return
    made = 0
    for _ in range(count * 20):
        if made == count:
            break
        n = int(rng.integers(2, 4))
        picks: list[Mapping] = []
        for i in rng.permutation(len(usable)):
            if all(usable[i]["action"] != p["action"] for p in picks):
                picks.append(usable[i])
            if len(picks) == n:
                break
        if len(picks) < 2:
            continue
        blends = [int(round(rng.uniform(0.3, 0.6) * fps)) for _ in picks[1:]]
        length = (max_frames + sum(blends)) // len(picks)
        clips = [most_active_window(np.asarray(p["joints"]), length) for p in picks]
        joints, spans = join_clips(clips, blends)
        questions = sequence_questions(picks, spans, rng, questions_per_sequence)
        if not questions:
            continue
        made += 1
        yield joints[:max_frames], [{k: v for k, v in p.items() if k != "joints"} for p in picks], spans, questions
