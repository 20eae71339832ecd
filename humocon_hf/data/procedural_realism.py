"""Domain randomisation of the procedural generator: training motion that varies the way real capture does.

The generator's people already differ in proportions, stance, speed and amplitude, but each of them performs an
action with a metronome's regularity, both sides of the body alike, from its first frame to its last. Real takes
do not: people speed up and slow down within an action, swing one arm more than the other, shift their weight,
carry a little capture noise, and a clip often starts or ends in the middle of an action. `Realism` adds those
variations to *training* motions only (the held-out benchmark stays as drawn), with its own random stream, so the
same motion index draws the same person and actions with or without it.

Every variation acts on the pose parameters before `solve_joints` (bone lengths stay constant and the feet keep
their floor contact), except the cropping of partial actions, which cuts frames and moves the segment bounds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .procedural_body import Body, Pose

__all__ = ["Realism"]

# Pose-parameter blocks per limb, for amplitude and asymmetry. Pole directions (knees, elbows) and the blend
# weights of world-frame wrist targets are left alone: scaling them has no physical meaning.
_LEFT_ARM = ("l_wrist", "l_wrist_w")
_RIGHT_ARM = ("r_wrist", "r_wrist_w")
_LEFT_LEG = ("l_ankle", "l_foot")
_RIGHT_LEG = ("r_ankle", "r_foot")
_TRUNK = ("torso", "head", "h")  # not the root's speed: it tells a walk from a jog from a run


def _smooth_noise(t: np.ndarray, rng: np.random.Generator, low: float, high: float, parts: int = 3) -> np.ndarray:
    """A zero-mean, roughly unit-std smooth signal over times `t` (s): a few sinusoids of frequencies in [low, high]
    Hz with random phases and weights."""
    freqs = rng.uniform(low, high, size=parts)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=parts)
    weights = rng.uniform(0.5, 1.0, size=parts)
    signal = (weights[:, None] * np.sin(2.0 * np.pi * freqs[:, None] * t[None, :] + phases[:, None])).sum(0)
    return signal * np.sqrt(2.0 / float((weights**2).sum()))


@dataclass(frozen=True)
class Realism:
    """How far a training motion departs from the generator's regular performance. Every field is the largest
    variation drawn (each motion draws its own amount uniformly up to it); `Realism.at(strength)` scales them all.

    Args:
        timing: std of the log playback rate within the motion (0.2: the action runs ~20% faster or slower for a
            while), varying at 0.1-0.6 Hz.
        amplitude: per-segment range of the size of every movement around the standing pose (0.2: 1x-1.2x;
            movements only grow, and a foot only higher).
        asymmetry: range of one side's movements against the other's (0.1: the left arm swings up to 10% more).
        body: extra range of the leg, arm and torso lengths on top of the generator's own (0.06: +-6%).
        sway: largest sideways weight shift of the pelvis, metres, with the feet kept in place.
        noise: std of smooth (1-4 Hz) capture-like noise on the wrist targets, metres (a quarter of it on the
            ankles, where it would slide a stance foot; the torso angles get 1.25 rad and the head 2.5 rad per metre).
        partial: probability that the motion starts (and, independently, ends) part-way into its first (last)
            action, cut by up to a quarter of that action's frames.
    """

    timing: float = 0.2
    amplitude: float = 0.2
    asymmetry: float = 0.1
    body: float = 0.06
    sway: float = 0.02
    noise: float = 0.006
    partial: float = 0.5

    @classmethod
    def for_split(cls, strength: float, split: str) -> Realism | None:
        """`at(strength)` for the training split, None for the held-out ones (never varied)."""
        realism = cls.at(strength)
        return realism if split == "train" else None

    @classmethod
    def at(cls, strength: float) -> Realism | None:
        """The default variations scaled by `strength` (0: None, no randomisation; 1: the defaults)."""
        strength = float(strength)
        if not (np.isfinite(strength) and strength >= 0):
            raise ValueError(f"realism strength must be a finite number >= 0, got {strength!r}")
        if strength == 0:
            return None
        base = cls()
        scaled = {f.name: getattr(base, f.name) * strength for f in dataclasses.fields(cls)}
        scaled["partial"] = min(1.0, scaled["partial"])
        return cls(**scaled)

    # ------------------------------------------------------------------------------------------ the person
    def vary_body(self, body: Body, rng: np.random.Generator) -> Body:
        """The same person with legs, arms and torso lengthened or shortened a little more."""
        leg, arm, torso = (1.0 + rng.uniform(-self.body, self.body) for _ in range(3))
        return dataclasses.replace(
            body,
            hip=body.hip * np.array([1.0, leg, 1.0]),
            spine=tuple(o * torso for o in body.spine),
            neck=body.neck * torso,
            foot=body.foot * leg,
            thigh=body.thigh * leg,
            shin=body.shin * leg,
            upper_arm=body.upper_arm * arm,
            forearm=body.forearm * arm,
        )

    # ------------------------------------------------------------------------------------------ the clock
    def warp_time(self, t: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The action clock `tau` at frame times `t` (same start and end, a varying rate) and its rate d tau / d t."""
        amount = rng.uniform(0.0, self.timing)
        rate = np.exp(amount * _smooth_noise(t, rng, 0.1, 0.6))
        if len(t) < 2:
            return t.copy(), np.ones_like(t)
        dt = np.diff(t)
        tau = np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * dt)])
        scale = (t[-1] - t[0]) / tau[-1]
        return t[0] + tau * scale, rate * scale

    # ------------------------------------------------------------------------------------------ the pose
    def vary_pose(self, pose: Pose, rest: Pose, segment_weights: list[np.ndarray], rng: np.random.Generator) -> None:
        """Scale each segment's movements around the standing pose `rest` (its own amount, blended across the
        transitions with the segments' weights), one side more than the other."""
        # Movements only grow (a throw still goes overhead, a wave above the shoulder); actions seen in part are
        # what `crop` adds.
        tilt = rng.uniform(-self.asymmetry, self.asymmetry)  # > 0: the left side moves more
        gains = np.zeros(len(pose))
        for weights in segment_weights:
            gains += weights * np.exp(rng.uniform(0.0, self.amplitude))
        for names, side in ((_LEFT_ARM + _LEFT_LEG, max(tilt, 0.0)), (_RIGHT_ARM + _RIGHT_LEG, max(-tilt, 0.0)),
                           (_TRUNK, 0.0)):
            gain = (gains * np.exp(side))[:, None]
            for name in names:
                # A foot goes higher, not further: a longer step at the same speed would slide the stance foot.
                columns = slice(1, 2) if name.endswith("_ankle") else slice(None)
                moved = pose[name][:, columns] - rest[name][:, columns]
                pose[name][:, columns] = rest[name][:, columns] + gain * moved

    def add_weight_shift_and_noise(self, pose: Pose, t: np.ndarray, rng: np.random.Generator) -> None:
        """A slow sideways sway of the pelvis over still feet (and world-placed hands), and smooth capture noise."""
        shift = rng.uniform(0.0, self.sway) * _smooth_noise(t, rng, 0.1, 0.4, parts=2)
        if len(t) > 1:
            pose["vel"][:, 0] += np.gradient(shift, t)
            for name in ("l_ankle", "r_ankle", "l_wrist_w", "r_wrist_w"):
                pose[name][:, 0] -= shift
        level = rng.uniform(0.0, self.noise)
        for name, scale in (("l_wrist", 1.0), ("r_wrist", 1.0), ("l_ankle", 0.25), ("r_ankle", 0.25)):
            for k in range(3):
                pose[name][:, k] += level * scale * _smooth_noise(t, rng, 1.0, 4.0)
        for k in range(3):
            pose["torso"][:, k] += level / 0.4 * 0.5 * _smooth_noise(t, rng, 0.5, 3.0)
        pose["head"][:, 0] += level / 0.4 * _smooth_noise(t, rng, 0.5, 3.0)

    # ------------------------------------------------------------------------------------------ the clip
    def crop(self, joints: np.ndarray, segments: list[dict], rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
        """Start part-way into the first action and / or stop part-way into the last one (each with probability
        `partial`, by up to a quarter of that action's frames); the segments' frames follow the cut."""
        first = segments[0]["end"] - segments[0]["start"]
        last = segments[-1]["end"] - segments[-1]["start"]
        head = int(rng.uniform(0.0, 0.25) * first) if rng.random() < self.partial else 0
        tail = int(rng.uniform(0.0, 0.25) * last) if rng.random() < self.partial else 0
        if len(segments) == 1:
            head, tail = head // 2, tail // 2  # one action: never cut more than a quarter of it in all
        if head == 0 and tail == 0:
            return joints, segments
        end = len(joints) - tail
        cut = [dict(seg, start=max(seg["start"] - head, 0), end=min(seg["end"], end) - head) for seg in segments]
        return joints[head:end], cut
