"""Real takes joined into sequences for before / after / in-between questions: continuity at the seams, the action of
each take kept whole, questions only about what the sequence's facts say, and the held-out line's split."""

from __future__ import annotations

import numpy as np
import pytest

from humocon_hf.data.procedural_vocabulary import vocabulary_clip
from humocon_hf.data.real_sequences import join_clips, most_active_window, sample_sequences
from humocon_hf.processing.smpl22 import JOINT_INDEX


def _clip(kind: str, seed: int) -> np.ndarray:
    return vocabulary_clip(kind, np.random.default_rng([seed, 1]))


def _heading(frame):
    across = frame[JOINT_INDEX["left_hip"]] - frame[JOINT_INDEX["right_hip"]]
    return np.arctan2(-across[2], across[0])


def test_joined_clips_are_continuous_at_the_seams():
    clips = [_clip("walk-turn-left", 0), _clip("raise-both-hands", 1), _clip("turn-right", 2)]
    joints, spans = join_clips(clips, [8, 10])
    assert len(joints) == sum(len(c) for c in clips) - 18 and spans[0][0] == 0 and spans[-1][1] == len(joints)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    step = np.linalg.norm(np.diff(joints, axis=0), axis=-1).max()  # no joint jumps across a seam
    inside = max(np.linalg.norm(np.diff(c, axis=0), axis=-1).max() for c in clips)
    assert step < 1.5 * inside + 0.02
    # The second take starts facing where the first was at the start of their overlap (not at its own heading).
    start = spans[1][0] - 4
    assert abs(np.angle(np.exp(1j * (_heading(joints[start]) - _heading(clips[0][-8]))))) < 0.3
    with pytest.raises(ValueError, match="n clips and n-1 blend lengths"):
        join_clips(clips, [8])


def test_the_most_active_window_keeps_the_action():
    still = np.repeat(_clip("raise-left-hand", 3)[:1], 60, axis=0)
    action = _clip("raise-left-hand", 3)
    take = np.concatenate([still, action, still])
    window = most_active_window(take, len(action))
    wrist = JOINT_INDEX["left_wrist"]
    assert window[:, wrist, 1].max() == pytest.approx(take[:, wrist, 1].max())
    assert len(most_active_window(action, 10_000)) == len(action)


def test_sequences_ask_only_what_their_takes_say():
    takes = [{"id": f"t{i}", "joints": _clip(kind, i), "action": action, "body_part": part, "direction": None}
             for i, (kind, action, part) in enumerate([("raise-left-hand", "raise", "left hand"),
                                                        ("turn-left", "turn", None),
                                                        ("walk-turn-right", "walk", None),
                                                        ("raise-right-hand", "raise", "right hand")])]
    made = list(sample_sequences(takes, 6, np.random.default_rng(0), max_frames=160, questions_per_sequence=3))
    assert len(made) == 6
    for joints, facts, spans, questions in made:
        assert len(joints) <= 160 and 2 <= len(facts) <= 3 and "joints" not in facts[0]
        assert len({f["action"] for f in facts}) == len(facts)  # distinct actions: each filter names one take
        for q in questions:
            assert q["relation_type"] in ("before", "after", "in between")
            assert q["answer"] == facts[q["answer_segment"]][q["query_type"]]
            assert "their both" not in q["question"]
    assert list(sample_sequences(takes[:1], 3, np.random.default_rng(0))) == []  # one action: nothing to relate
