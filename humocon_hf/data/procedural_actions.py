"""Action generators of the procedural motion benchmark: each writes pose parameters over time.

An action is built from its sampled settings (speed, amplitude, repetitions, side, ...) and evaluated at
any times ``t`` (seconds from the action's start, also before its start or after its end: periodic
actions keep going, the others hold their first / last pose), which is what lets `procedural.py` blend
neighbouring segments smoothly. Conventions (consistent with BABEL's "move left" = towards the person's
own left): directions are relative to the body: forward = facing direction (+Z of the heading frame),
backwards = -Z, left = +X (side-stepping / jumping to the person's left), right = -X. The person keeps
facing the same way during a direction segment.

One file (over 600 lines) on purpose: the actions are one catalogue of small `Action` subclasses over the shared
time helpers, `Style` and neutral pose, dispatched by `make_action`; split by action, the conventions above would
be spread over nine files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .procedural_body import NUM_PARAMS, Body, Pose

GRAVITY = 9.81

DIRECTION_VECTORS = {"forward": (0.0, 1.0), "backwards": (0.0, -1.0), "left": (1.0, 0.0), "right": (-1.0, 0.0)}

# Which answer the "what body part" query has for a sided action, by limb.
_BODY_PART_LIMB = {
    "wave": "hand",
    "knock": "hand",
    "catch": "hand",
    "take/pick something up": "hand",
    "place something": "hand",
    "throw": "arm",
    "kick": "leg",
    "kneel": "leg",  # the knee that goes to the floor
    "jump": "foot",  # only for one-footed hops: the foot hopped on
}

# action -> allowed directions (None = in place / no direction)
ACTION_DIRECTIONS = {
    "walk": ("forward", "backwards", "left", "right"),
    "jog": ("forward", "backwards"),
    "run": ("forward",),
    "jump": ("forward", "backwards", "left", "right", None),
    "crawl": ("forward",),
}
# Actions after which the person is down (seated, kneeling, crouched, on all fours): next is "stand up".
DOWN_ACTIONS = ("sit", "kneel", "crouch", "crawl")
SIDED_ACTIONS = ("wave", "knock", "catch", "throw", "take/pick something up", "place something", "kick", "kneel")
ALL_ACTIONS = (
    "walk", "jog", "run", "jump", "jumping jacks", "crawl",
    "wave", "knock", "catch", "throw", "take/pick something up", "place something", "kick",
    "squat", "crouch", "kneel", "sit", "stand up",
)  # fmt: skip


def body_part_for(action: str, side: int | None) -> str | None:
    """The BABEL-QA body-part answer of an action done with `side` (+1 left, -1 right), or None."""
    if side is None or action not in _BODY_PART_LIMB:
        return None
    return f"{'left' if side > 0 else 'right'} {_BODY_PART_LIMB[action]}"


# ------------------------------------------------------------------------------------ time helpers


def smooth(x):
    """Cosine ease 0 -> 1 on [0, 1], clamped outside."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def ramp(t, t0, t1):
    return smooth((t - t0) / max(t1 - t0, 1e-6))


def bump(t, t0, t1, t2, t3):
    """0 before t0, up to 1 by t1, 1 until t2, back to 0 by t3."""
    return ramp(t, t0, t1) * (1.0 - ramp(t, t2, t3))


def lerp(a, b, w):
    """a + (b - a) * w with per-frame weights w (T,) broadcast over the parameter columns."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 1:
        w = w[:, None]
    return a + (b - a) * w


def planted_velocity(t: np.ndarray, foot_z: np.ndarray, foot_x: np.ndarray | None = None) -> np.ndarray:
    """Root velocity that keeps a foot fixed on the floor while its heading-frame target moves."""
    dt = np.gradient(t) if len(t) > 1 else np.ones(1)
    vz = -np.gradient(foot_z) / dt if len(t) > 1 else np.zeros(1)
    vx = -np.gradient(foot_x) / dt if (foot_x is not None and len(t) > 1) else np.zeros_like(vz)
    return np.stack([vx, vz], -1)


# ------------------------------------------------------------------------------------ style / neutral


@dataclass
class Style:
    """Per-person idiosyncrasies of the standing pose (start pose variation)."""

    stance: float  # half distance between the ankles (m)
    foot_z: float
    lean: float
    knee_soft: float
    arm_out: float
    arm_fwd: float
    head: float
    elbow_back: float

    @classmethod
    def sample(cls, rng: np.random.Generator, body: Body) -> Style:
        return cls(
            stance=abs(body.hip[0]) * rng.uniform(0.6, 1.25),
            foot_z=rng.uniform(-0.02, 0.04),
            lean=rng.uniform(-0.04, 0.1),
            knee_soft=rng.uniform(0.0, 0.012),
            arm_out=rng.uniform(0.02, 0.1),
            arm_fwd=rng.uniform(-0.02, 0.1),
            head=rng.uniform(-0.1, 0.2),
            elbow_back=rng.uniform(0.6, 1.0),
        )


def neutral(T: int, body: Body, style: Style) -> Pose:
    """Standing still, arms hanging; the base every action modifies."""
    p = Pose(np.zeros((T, NUM_PARAMS)))
    h = body.stand_height - style.knee_soft
    p["h"] = h
    p["torso"] = (style.lean, 0.0, 0.0)
    p["head"] = style.head
    for s, pre in ((1, "l"), (-1, "r")):
        p[f"{pre}_ankle"] = (s * style.stance, body.ankle_height, style.foot_z)
        p[f"{pre}_knee"] = (0.15 * s, 0.0, 1.0)
        reach = 0.97 * body.arm
        x, z = s * style.arm_out, style.arm_fwd
        p[f"{pre}_wrist"] = (x, -np.sqrt(reach * reach - x * x - z * z), z)
        sh = body.shoulder_offset(s)
        p[f"{pre}_wrist_w"] = (sh[0] + x, h + sh[1] - reach, sh[2] + z)
        p[f"{pre}_elbow"] = (0.3 * s, -0.1, -style.elbow_back)
    return p


def arm_target(body: Body, x, y, z, scale_to_reach=True):
    """A torso-frame wrist target given as fractions of the arm length."""
    return np.stack(np.broadcast_arrays(x, y, z), -1) * (body.arm if scale_to_reach else 1.0)


# ------------------------------------------------------------------------------------ actions


@dataclass
class Action:
    """One sampled action: `pose(t)` gives its parameters at times t (seconds from its start)."""

    name: str
    body: Body
    style: Style
    duration: float
    direction: str | None = None
    side: int | None = None
    settings: dict = field(default_factory=dict)

    @property
    def body_part(self) -> str | None:
        return body_part_for(self.name, self.side)

    def pose(self, t: np.ndarray) -> Pose:  # pragma: no cover - overridden
        raise NotImplementedError

    def hold(self) -> Pose:
        """The (static) pose the person is left in; only meaningful for DOWN_ACTIONS."""
        return self.pose(np.array([1e6]))


def _sideflag(side: int) -> str:
    return "l" if side > 0 else "r"


class Gait(Action):
    """walk / jog / run in a body-relative direction, feet planted during stance (no foot skating)."""

    _RANGES = {
        # kind: speed (m/s) by direction, cadence (steps/s), duty factor, foot lift (m), lean
        "walk": dict(forward=(1.05, 1.55), backwards=(0.55, 0.95), side=(0.3, 0.48), cadence=(1.75, 2.05),
                     duty=0.6, lift=(0.08, 0.13), lean=0.04),
        "jog": dict(forward=(2.0, 2.7), backwards=(1.2, 1.7), cadence=(2.5, 2.8), duty=0.42, lift=(0.16, 0.22),
                    lean=0.1),
        "run": dict(forward=(3.2, 4.4), cadence=(2.8, 3.2), duty=0.33, lift=(0.24, 0.32), lean=0.2),
    }  # fmt: skip

    @classmethod
    def sample(cls, name, rng, body, style, direction, duration):
        r = cls._RANGES[name]
        lateral = direction in ("left", "right")
        speed = rng.uniform(*(r["side"] if lateral else r[direction])) * (body.leg / 0.81) ** 0.5
        cadence = rng.uniform(*r["cadence"]) * (0.85 if lateral else 1.0)
        settings = dict(
            speed=speed, cadence=cadence, duty=r["duty"] - (0.05 if lateral else 0.0) + rng.uniform(-0.02, 0.02),
            lift=rng.uniform(*r["lift"]) * (0.6 if lateral else 1.0), lean=r["lean"] + rng.uniform(-0.03, 0.05),
            phase0=rng.uniform(0, 1), arm_amp=rng.uniform(0.6, 1.2), kind=name,
        )
        return cls(name, body, style, duration, direction=direction, settings=settings)

    def pose(self, t):
        b, st, g = self.body, self.style, self.settings
        p = neutral(len(t), b, st)
        kind, v, beta = g["kind"], g["speed"], g["duty"]
        cyc = g["cadence"] / 2.0  # gait cycles per second
        dx, dz = DIRECTION_VECTORS[self.direction]
        lateral = dx != 0.0
        S = v * beta / cyc  # how far a stance foot travels relative to the pelvis
        stance_w = max(st.stance, 0.75 * abs(b.hip[0])) + (0.1 if lateral else 0.0)
        if lateral:
            S = min(S, 2 * stance_w - 0.1)
            v = S * cyc / beta
        phase = cyc * t + g["phase0"]
        p["vel"] = np.stack([np.full_like(t, dx * v), np.full_like(t, dz * v)], -1)
        run = kind != "walk"
        fz = st.foot_z + 0.03 * (1 if not lateral else 0)
        for s, pre, off in ((1, "l", 0.0), (-1, "r", 0.5)):
            ph = np.mod(phase + off, 1.0)
            ankle, pitch = self._foot(ph, S, stance_w * s, fz, run)
            p[f"{pre}_ankle"] = ankle
            p[f"{pre}_foot"] = pitch[:, None]
            # Arms swing opposite to the leg on the same side.
            amp = g["arm_amp"] * (0.18 if not run else 0.25) * (0.4 if lateral else (0.7 if dz < 0 else 1.0))
            swing = -np.cos(2 * np.pi * ph)
            if run:
                base = arm_target(b, s * 0.05, -0.5, 0.35)
                p[f"{pre}_wrist"] = base + np.stack([0 * t, 0.25 * amp * (swing + 1), amp * swing], -1)
                p[f"{pre}_elbow"] = (0.2 * s, -0.3, -1.0)
            else:
                w = p[f"{pre}_wrist"]
                w[:, 2] += amp * swing
                w[:, 1] += 0.3 * amp * np.abs(swing)
        p["torso"][:, 0] = g["lean"] * (1 if dz >= 0 else -0.5) + st.lean * 0.5
        h_des = p["h"][0, 0] - (0.05 + 0.02 * (kind == "run") if run else 0.03)
        p["h"] = self._pelvis_height(np.mod(phase, 1.0), h_des, S, stance_w, fz, run)[:, None]
        if run:
            flight = 0.5 - beta
            ph = np.mod(phase, 0.5)  # both halves of the cycle have a flight
            q = np.clip((ph - beta) / flight, 0.0, 1.0)
            tf = flight / cyc
            p["air"] = (GRAVITY * tf * tf / 2.0 * q * (1 - q))[:, None]
        return p

    def _foot(self, ph, S, x0, fz, run):
        """Ankle target (T, 3) and foot pitch (T,) of one foot at gait phases `ph` in [0, 1)."""
        b, g = self.body, self.settings
        beta = g["duty"]
        dx, dz = DIRECTION_VECTORS[self.direction]
        stance = ph < beta
        q = np.clip((ph - beta) / (1.0 - beta), 0.0, 1.0)  # swing progress
        r = ph / beta  # stance progress
        # Forward walking lands the foot closer under the body than where it pushes off.
        ahead = 0.42 if dz > 0 else 0.5
        u = np.where(stance, S * (ahead - r), S * (ahead - 1.0 + smooth(q)))
        y = b.ankle_height + np.where(stance, 0.0, g["lift"] * np.sin(np.pi * q))
        pitch = np.zeros_like(ph)
        back = np.zeros_like(ph)
        if dz > 0:
            # Heel rise before toe-off (continued into early swing), heel strike with the toes up.
            heel = np.where(stance, np.clip((r - 0.6) / 0.4, 0.0, 1.0) ** 2, 1.0 - smooth(q / 0.35))
            strike = (np.clip(1.0 - r / 0.25, 0.0, 1.0) ** 2) * stance * (0.0 if run else 1.0)
            pitch = np.where(stance, 1.0 * heel - 0.3 * strike, 1.0 * (1 - smooth(q)) - (0.0 if run else 0.3) * smooth(q))
            # Roll over the toes: raise the ankle so the toe joint stays at its resting height.
            roll = np.maximum(pitch, 0.0)
            y = y + b.foot[1] * (1.0 - np.cos(roll)) + b.foot[2] * np.sin(roll)
            if run:
                back = 0.35 * g["lift"] * np.sin(np.pi * np.clip(q * 1.4, 0, 1)) * (1 - stance)
        return np.stack([x0 + dx * u, y, fz + dz * (u - back)], -1), pitch

    def _pelvis_height(self, ph, h_des, S, stance_w, fz, run):
        """Pelvis height over the gait cycle: as high as `h_des` allows with both feet reaching their
        targets, low-pass filtered around the cycle (no kinks at double support), at phases `ph`."""
        b = self.body
        grid = np.arange(96) / 96.0
        lmax = 0.995 * b.leg
        limit = np.full_like(grid, h_des)
        for s, off in ((1, 0.0), (-1, 0.5)):
            a, _ = self._foot(np.mod(grid + off, 1.0), S, stance_w * s, fz, run)
            hip = b.hip * np.array([s, 1.0, 1.0])
            dxz2 = (a[:, 0] - hip[0]) ** 2 + (a[:, 2] - hip[2]) ** 2
            limit = np.minimum(limit, a[:, 1] - hip[1] + np.sqrt(np.maximum(lmax * lmax - dxz2, 0.0)))
        k = np.exp(-0.5 * (np.minimum(np.arange(96), 96 - np.arange(96)) / 4.0) ** 2)
        smooth_h = np.real(np.fft.ifft(np.fft.fft(limit) * np.fft.fft(k / k.sum())))
        smooth_h -= max(0.0, float((smooth_h - limit).max()))
        return np.interp(ph, np.append(grid, 1.0), np.append(smooth_h, smooth_h[0]))


class Jump(Action):
    """Two-footed jumps (with a direction or in place), or one-footed hops (`side` = the hopping foot)."""

    @classmethod
    def sample(cls, rng, body, style, direction, duration, side=None):
        hop = side is not None
        if hop:
            tc, tf, tl, depth = rng.uniform(0.18, 0.26), rng.uniform(0.22, 0.3), 0.2, rng.uniform(0.05, 0.1)
        else:
            tc, tf, tl, depth = rng.uniform(0.3, 0.45), rng.uniform(0.3, 0.45), 0.35, rng.uniform(0.15, 0.28)
        dist = {None: 0.0, "forward": rng.uniform(0.4, 0.9), "backwards": rng.uniform(0.25, 0.5),
                "left": rng.uniform(0.25, 0.6), "right": rng.uniform(0.25, 0.6)}[direction]  # fmt: skip
        if hop:
            dist *= 0.5
        cycle = tc + tf + tl
        lead = 0.3 if hop else 0.15
        n = int(np.clip(np.floor((duration - lead - 0.3) / cycle), 1, 4 if hop else 3))
        if hop:
            n = max(n, 2)
        duration = lead + n * cycle + 0.3
        settings = dict(tc=tc, tf=tf, tl=tl, depth=depth, dist=dist, n=n, lead=lead, arms=rng.uniform(0.6, 1.1))
        return cls("jump", body, style, duration, direction=direction, side=side, settings=settings)

    def pose(self, t):
        b, st, g = self.body, self.style, self.settings
        p = neutral(len(t), b, st)
        tc, tf, tl = g["tc"], g["tf"], g["tl"]
        cycle = tc + tf + tl
        rel = t - g["lead"]
        k = np.clip(np.floor(rel / cycle), 0, g["n"] - 1)
        tau = rel - k * cycle
        active = (rel >= 0) & (rel < g["n"] * cycle)
        tau = np.where(active, tau, -1.0)
        crouch = ramp(tau, 0.0, 0.6 * tc) * (1.0 - ramp(tau, 0.6 * tc, tc))
        land = ramp(tau, tc + tf, tc + tf + 0.12) * (1.0 - ramp(tau, tc + tf + 0.12, cycle))
        c = g["depth"] * (crouch + 0.7 * land)
        q = np.where(active, (tau - tc) / tf, -1.0)
        fly = (q > 0) & (q < 1)
        p["h"] = p["h"] - c[:, None]
        p["air"] = np.where(fly, GRAVITY * tf * tf / 2.0 * q * (1 - q), 0.0)[:, None]
        p["torso"][:, 0] += 1.4 * c
        dx, dz = DIRECTION_VECTORS.get(self.direction, (0.0, 0.0))
        v = g["dist"] / tf
        p["vel"] = np.stack([np.where(fly, dx * v, 0.0), np.where(fly, dz * v, 0.0)], -1)
        qs = np.clip(q, 0, 1)
        swing_back = crouch
        swing_up = np.where(fly, np.sin(np.pi * qs), 0.0) + ramp(tau, 0.5 * tc, tc) * (1 - ramp(tau, tc, tc + 0.3 * tf))
        swing_up = np.clip(swing_up, 0, 1)
        for s, pre in ((1, "l"), (-1, "r")):
            w = p[f"{pre}_wrist"]
            w[:, 2] += g["arms"] * b.arm * (-0.45 * swing_back + 0.6 * swing_up)
            w[:, 1] += g["arms"] * b.arm * (0.1 * swing_back + 0.45 * swing_up)
            p[f"{pre}_foot"] = (0.5 * np.where(fly, np.sin(np.pi * qs), 0.0))[:, None]
        if self.side is not None:
            up = _sideflag(-self.side)  # the free leg is held up behind
            hold = ramp(t, 0.0, g["lead"]) * (1 - ramp(t, g["lead"] + g["n"] * cycle, self.duration - 0.05))
            a = p[f"{up}_ankle"]
            a[:, 1] += hold * 0.3 * b.leg
            a[:, 2] -= hold * 0.2 * b.leg
            a[:, 0] *= 1 - 0.3 * hold
            p[f"{up}_foot"] = (0.4 * hold)[:, None]
            # Lean slightly over the stance foot.
            p["torso"][:, 1] += -self.side * 0.08 * hold
        return p


class JumpingJacks(Action):
    @classmethod
    def sample(cls, rng, body, style, duration):
        period = rng.uniform(0.8, 1.1)
        n = int(np.clip(np.floor((duration - 0.4) / period), 2, 6))
        settings = dict(period=period, n=n, spread=rng.uniform(0.18, 0.3), hop=rng.uniform(0.05, 0.09),
                        overhead=rng.uniform(0.8, 1.0))  # fmt: skip
        return cls("jumping jacks", body, style, n * period + 0.4, settings=settings)

    def pose(self, t):
        b, st, g = self.body, self.style, self.settings
        p = neutral(len(t), b, st)
        rel = np.clip(t - 0.2, 0.0, g["n"] * g["period"])
        ang = 2 * np.pi * rel / g["period"]
        opened = 0.5 - 0.5 * np.cos(ang)
        sn = np.abs(np.sin(ang))
        p["air"] = (g["hop"] * np.clip((sn - 0.3) / 0.7, 0, 1) ** 1.5)[:, None]
        for s, pre in ((1, "l"), (-1, "r")):
            p[f"{pre}_ankle"][:, 0] += s * g["spread"] * opened
            p[f"{pre}_foot"] = (0.4 * np.clip((sn - 0.3) / 0.7, 0, 1))[:, None]
            down = p[f"{pre}_wrist"].copy()
            up = np.broadcast_to(arm_target(b, s * 0.35, 0.93 * g["overhead"], 0.05), down.shape)
            p[f"{pre}_wrist"] = lerp(down, up, opened)
            p[f"{pre}_elbow"] = np.broadcast_to(np.array([0.2 * s, 0.0, -1.0]), down.shape)
        return p


def _all_fours(body: Body, style: Style, rng_pitch: float = 0.0):
    """Static hands-and-knees pose settings: torso pitch, pelvis height, hand and ankle targets."""
    h_knee = body.thigh + 0.05 - body.hip[1]
    best, best_err = 1.3, 1e9
    for pitch in np.linspace(0.9, 1.9, 41):
        sh = body.shoulder_offset(1, pitch)
        err = abs(h_knee + sh[1] - (0.96 * body.arm + 0.06))
        if err < best_err:
            best, best_err = pitch, err
    return best + rng_pitch, h_knee


class Crawl(Action):
    """Get down to hands and knees, then crawl forward with a contralateral gait."""

    @classmethod
    def sample(cls, rng, body, style, direction, duration):
        settings = dict(speed=rng.uniform(0.3, 0.5), period=rng.uniform(0.9, 1.3), down=rng.uniform(0.9, 1.3),
                        dpitch=rng.uniform(-0.08, 0.05), phase0=rng.uniform(0, 1))  # fmt: skip
        return cls("crawl", body, style, max(duration, settings["down"] + 1.5), direction=direction, settings=settings)

    def static(self, T: int) -> Pose:
        b, st = self.body, self.style
        p = neutral(T, b, st)
        pitch, h = _all_fours(b, st, self.settings["dpitch"])
        p["h"] = h
        p["torso"] = (pitch, 0.0, 0.0)
        p["head"] = -0.6
        for s, pre in ((1, "l"), (-1, "r")):
            sh = b.shoulder_offset(s, pitch)
            p[f"{pre}_world"] = 1.0
            p[f"{pre}_wrist_w"] = (sh[0], 0.06, sh[2] + 0.04)
            p[f"{pre}_elbow"] = (0.2 * s, 0.0, -1.0)
            p[f"{pre}_ankle"] = (s * abs(b.hip[0]), 0.1, b.hip[2] - 0.93 * b.shin)
            p[f"{pre}_knee"] = (0.0, -0.3, 1.0)
            p[f"{pre}_foot"] = 2.6
        return p

    def hold(self) -> Pose:
        return self.static(1)

    def pose(self, t):
        g = self.settings
        base = neutral(len(t), self.body, self.style)
        p = self.static(len(t))
        down0, down1 = 0.2, 0.2 + g["down"]
        go = ramp(t, down1 - 0.2, down1 + 0.4)
        cyc = 1.0 / g["period"]
        beta = 0.72
        S = g["speed"] * beta / cyc
        phase = cyc * t + g["phase0"]
        for s, pre, off in ((1, "l", 0.0), (-1, "r", 0.5)):
            for limb, o2, lift in (("wrist_w", 0.0, 0.06), ("ankle", 0.5, 0.03)):
                ph = np.mod(phase + off + o2, 1.0)
                stance = ph < beta
                q = np.clip((ph - beta) / (1 - beta), 0, 1)
                u = np.where(stance, S / 2 - S * ph / beta, -S / 2 + S * smooth(q)) * go
                key = f"{pre}_{limb}"
                p[key][:, 2] += u
                p[key][:, 1] += np.where(stance, 0.0, lift * np.sin(np.pi * q)) * go
        p["vel"] = np.stack([0 * t, g["speed"] * go], -1)
        w = ramp(t, down0, down1)
        p.array[:] = lerp(base.array, p.array, w)
        return p


class Posture(Action):
    """sit / kneel / crouch: go down from standing and stay there (feet planted, pelvis moves back)."""

    @classmethod
    def sample(cls, name, rng, body, style, duration, side=None):
        settings = dict(down=rng.uniform(0.9, 1.4), lean=rng.uniform(-0.08, 0.12), depth=rng.uniform(0.0, 1.0),
                        arms=rng.uniform(0, 1), delay=rng.uniform(0.15, 0.4))  # fmt: skip
        duration = max(duration, settings["delay"] + settings["down"] + 0.6)
        return cls(name, body, style, duration, side=side, settings=settings)

    def static(self, T: int) -> Pose:
        b, st, g = self.body, self.style, self.settings
        p = neutral(T, b, st)
        if self.name == "sit":
            p["h"] = b.shin + b.ankle_height - b.hip[1] + 0.02
            p["torso"] = (g["lean"] - 0.04, 0.0, 0.0)
            for s, pre in ((1, "l"), (-1, "r")):
                p[f"{pre}_ankle"] = (s * st.stance, b.ankle_height, 0.95 * b.thigh + 0.05 * g["depth"])
                p[f"{pre}_knee"] = (0.1 * s, 0.4, 1.0)
                p[f"{pre}_wrist"] = arm_target(b, s * 0.0, -0.62, 0.55 + 0.1 * g["arms"])
        elif self.name == "kneel":
            # Kneeling knee on the floor slightly in front of the hip, shin back along the floor, toes
            # tucked; the other foot planted in front with the thigh near horizontal.
            k, f = _sideflag(self.side), _sideflag(-self.side)
            knee_y, knee_dz = 0.065, 0.05
            hip_y = knee_y + np.sqrt(b.thigh**2 - knee_dz**2)
            p["h"] = hip_y - b.hip[1]
            p["torso"] = (0.05 + 0.5 * g["lean"], 0.0, 0.0)
            p[f"{k}_ankle"] = (self.side * abs(b.hip[0]), knee_y + 0.08 * b.shin, b.hip[2] + knee_dz - 0.99 * b.shin)
            p[f"{k}_knee"] = (0.0, -1.0, 0.3)
            p[f"{k}_foot"] = 0.3
            p[f"{f}_ankle"] = (-self.side * st.stance, b.ankle_height, b.hip[2] + 0.85 * b.thigh)
            p[f"{f}_knee"] = (0.0, 0.5, 1.0)
            for s, pre in ((1, "l"), (-1, "r")):
                p[f"{pre}_wrist"] = arm_target(b, -s * 0.05, -0.55, 0.55 + 0.15 * g["arms"])
        elif self.name == "crouch":
            p["h"] = (0.62 + 0.08 * g["depth"]) * b.leg
            p["torso"] = (0.55 + 0.3 * g["depth"], 0.0, 0.0)
            p["head"] = -0.3
            for s, pre in ((1, "l"), (-1, "r")):
                p[f"{pre}_ankle"] = (s * (st.stance + 0.04), b.ankle_height + 0.05, 0.08)
                p[f"{pre}_foot"] = 0.55
                p[f"{pre}_knee"] = (0.25 * s, 0.0, 1.0)
                p[f"{pre}_wrist"] = arm_target(b, s * 0.05, -0.75, 0.45 + 0.2 * g["arms"])
        else:  # pragma: no cover
            raise ValueError(f"unknown posture {self.name!r}")
        return p

    def hold(self) -> Pose:
        return self.static(1)

    def pose(self, t):
        g = self.settings
        base = neutral(len(t), self.body, self.style)
        down = self.static(len(t))
        t0, t1 = g["delay"], g["delay"] + g["down"]
        w = ramp(t, t0, t1)
        p = Pose(lerp(base.array, down.array, w))
        p["torso"][:, 0] += (0.45 if self.name == "sit" else 0.25) * bump(t, t0, (t0 + t1) / 2, (t0 + t1) / 2, t1)
        if self.name == "kneel":
            # The kneeling leg steps back first, lifted; the front foot stays planted.
            k, f = _sideflag(self.side), _sideflag(-self.side)
            wk = ramp(t, t0, t0 + 0.6 * (t1 - t0))
            p[f"{k}_ankle"] = lerp(base[f"{k}_ankle"], down[f"{k}_ankle"], wk)
            p[f"{k}_ankle"][:, 1] += 0.1 * np.sin(np.pi * wk)
            p["vel"] = planted_velocity(t, p[f"{f}_ankle"][:, 2])
        else:
            p["vel"] = planted_velocity(t, p["l_ankle"][:, 2])
        return p


class StandUp(Action):
    """Rise from a down pose (the previous segment's hold) to standing."""

    @classmethod
    def sample(cls, rng, body, style, duration, start: Pose):
        settings = dict(up=rng.uniform(0.9, 1.5), delay=rng.uniform(0.2, 0.4), lean=rng.uniform(0.25, 0.5))
        duration = max(duration, settings["delay"] + settings["up"] + 0.5)
        a = cls("stand up", body, style, duration, settings=settings)
        a.start = start.array[-1:].copy()
        a.start[:, :2] = 0.0  # no velocity at rest
        return a

    def pose(self, t):
        g = self.settings
        base = neutral(len(t), self.body, self.style)
        start = Pose(np.repeat(self.start, len(t), axis=0))
        t0, t1 = g["delay"], g["delay"] + g["up"]
        w = ramp(t, t0, t1)
        p = Pose(lerp(start.array, base.array, w))
        p["torso"][:, 0] += g["lean"] * bump(t, t0, t0 + 0.4 * (t1 - t0), t0 + 0.5 * (t1 - t0), t1)
        # Keep the foot that carries the weight planted: the one whose ankle is lowest at the start.
        ly, ry = start["l_ankle"][0, 1], start["r_ankle"][0, 1]
        if abs(ly - ry) < 0.02:
            fz = 0.5 * (p["l_ankle"][:, 2] + p["r_ankle"][:, 2])
        else:
            fz = p["l_ankle" if ly < ry else "r_ankle"][:, 2]
        p["vel"] = planted_velocity(t, fz)
        return p


class Squat(Action):
    @classmethod
    def sample(cls, rng, body, style, duration):
        period = rng.uniform(1.5, 2.3)
        n = int(np.clip(np.floor((duration - 0.6) / period), 1, 3))
        settings = dict(period=period, n=n, depth=rng.uniform(0.55, 0.68), lean=rng.uniform(0.25, 0.5),
                        arms=rng.uniform(0, 1))  # fmt: skip
        return cls("squat", body, style, n * period + 0.6, settings=settings)

    def pose(self, t):
        b, st, g = self.body, self.style, self.settings
        p = neutral(len(t), b, st)
        rel = np.clip(t - 0.3, 0.0, g["n"] * g["period"])
        d = 0.5 - 0.5 * np.cos(2 * np.pi * rel / g["period"])
        arms = bump(t, 0.0, 0.4, self.duration - 0.4, self.duration)
        h_low = g["depth"] * b.leg
        p["h"] = lerp(p["h"], np.full_like(p["h"], h_low), d)
        p["torso"][:, 0] += g["lean"] * d
        for s, pre in ((1, "l"), (-1, "r")):
            p[f"{pre}_ankle"][:, 0] = s * (st.stance + 0.05)
            p[f"{pre}_ankle"][:, 2] += 0.1 * d
            p[f"{pre}_knee"] = (0.35 * s, 0.0, 1.0)
            fwd = arm_target(b, s * 0.15, 0.0 + 0.05 * g["arms"], 0.9)
            p[f"{pre}_wrist"] = lerp(p[f"{pre}_wrist"], np.broadcast_to(fwd, p[f"{pre}_wrist"].shape), arms)
        p["vel"] = planted_velocity(t, p["l_ankle"][:, 2])
        return p


class ArmAction(Action):
    """wave, knock, catch, throw, take/pick something up, place something: one arm (`side`)."""

    @classmethod
    def sample(cls, name, rng, body, style, duration, side):
        g = dict(speed=rng.uniform(0.85, 1.2), amp=rng.uniform(0.7, 1.2))
        if name == "wave":
            g.update(freq=rng.uniform(1.5, 2.6), n=int(rng.integers(3, 6)), height=rng.uniform(0.6, 0.85),
                     out=rng.uniform(0.3, 0.5))  # fmt: skip
            duration = 0.9 + g["n"] / g["freq"]
        elif name == "knock":
            g.update(freq=rng.uniform(2.5, 3.8), n=int(rng.integers(3, 6)), height=rng.uniform(-0.05, 0.25))
            duration = 1.1 + g["n"] / g["freq"]
        elif name in ("catch", "throw"):
            g.update(x=rng.uniform(0.0, 0.4), y=rng.uniform(0.0, 0.5))
            duration = rng.uniform(1.6, 2.2) / g["speed"]
        else:  # pick up / place
            g.update(obj_y=rng.uniform(0.05, 0.5), obj_z=rng.uniform(0.3, 0.45), obj_x=rng.uniform(0.05, 0.25))
            duration = rng.uniform(2.2, 3.0) / g["speed"]
        return cls(name, body, style, duration, side=side, settings=g)

    def pose(self, t):
        b, st, g, s = self.body, self.style, self.settings, self.side
        p = neutral(len(t), b, st)
        a = _sideflag(s)
        W = p[f"{a}_wrist"]
        hang = W.copy()
        D = self.duration
        x = t / D  # progress
        if self.name == "wave":
            up = bump(t, 0.05, 0.45, D - 0.45, D - 0.05)
            osc = np.sin(2 * np.pi * g["freq"] * np.clip(t - 0.45, 0, None)) * bump(t, 0.4, 0.55, D - 0.55, D - 0.4)
            raised = arm_target(b, s * (g["out"] + 0.18 * g["amp"] * osc), g["height"], 0.15 + 0 * osc)
            W[:] = lerp(hang, raised, up)
            p[f"{a}_elbow"] = lerp(p[f"{a}_elbow"], np.broadcast_to(np.array([s * 1.0, -0.8, 0.1]), W.shape), up)
        elif self.name == "knock":
            up = bump(t, 0.05, 0.5, D - 0.5, D - 0.05)
            tap = np.maximum(np.sin(2 * np.pi * g["freq"] * np.clip(t - 0.55, 0, None)), 0.0) ** 2
            tap *= bump(t, 0.5, 0.55, D - 0.55, D - 0.5)
            raised = arm_target(b, s * 0.0, g["height"], 0.6 + 0.14 * g["amp"] * tap)
            W[:] = lerp(hang, raised, up)
            p[f"{a}_elbow"] = lerp(p[f"{a}_elbow"], np.broadcast_to(np.array([s * 0.6, -1.0, 0.0]), W.shape), up)
        elif self.name == "catch":
            reach = bump(x, 0.08, 0.3, 0.4, 0.6)
            chest = bump(x, 0.45, 0.65, 0.75, 0.95)
            out = arm_target(b, s * g["x"], g["y"], 0.85)
            hold = arm_target(b, -s * 0.25, -0.35, 0.5)
            W[:] = lerp(lerp(hang, out, reach), hold, chest)
            p["torso"][:, 0] += 0.1 * reach
        elif self.name == "throw":
            wind = bump(x, 0.1, 0.35, 0.45, 0.55)
            release = bump(x, 0.45, 0.55, 0.56, 0.7)
            follow = bump(x, 0.55, 0.7, 0.75, 0.95)
            back = arm_target(b, s * 0.25, 0.45, -0.45)
            fwd = arm_target(b, s * 0.1, 0.45 + 0.3 * g["y"], 0.8)
            across = arm_target(b, -s * 0.35, -0.6, 0.5)
            W[:] = lerp(lerp(lerp(hang, back, wind), fwd, release), across, follow)
            p[f"{a}_elbow"] = lerp(p[f"{a}_elbow"], np.broadcast_to(np.array([s * 1.0, -0.5, -0.3]), W.shape), wind)
            p["torso"][:, 2] += s * 0.5 * g["amp"] * wind - s * 0.3 * follow
            p["torso"][:, 0] += -0.1 * wind + 0.3 * follow
        else:
            pick = self.name == "take/pick something up"
            chest = arm_target(b, -s * 0.25, -0.4, 0.55)
            if pick:
                down = bump(x, 0.12, 0.42, 0.52, 0.8)
                at_chest = ramp(x, 0.55, 0.85)
            else:
                down = bump(x, 0.22, 0.5, 0.58, 0.86)
                at_chest = bump(x, 0.02, 0.2, 0.35, 0.5)
            W[:] = lerp(hang, chest, at_chest)
            low = np.clip((0.6 - g["obj_y"]) / 0.55, 0, 1)
            p["torso"][:, 0] += (0.8 + 0.6 * low) * down
            p["head"] += 0.4 * down[:, None]
            p["h"] = p["h"] - (0.12 + 0.3 * low) * b.leg * down[:, None]
            sh = b.shoulder_offset(s)
            p[f"{a}_wrist_w"] = (sh[0] * 0.5 + s * g["obj_x"], g["obj_y"], g["obj_z"] + 0.1 * low)
            p[f"{a}_world"] = down[:, None]
            # The free hand rests on its thigh while bending.
            o = _sideflag(-s)
            p[f"{o}_wrist_w"] = (-s * (abs(b.hip[0]) + 0.06), (0.62 - 0.2 * low) * b.leg, 0.22)
            p[f"{o}_world"] = 0.8 * down[:, None]
        return p


class Kick(Action):
    @classmethod
    def sample(cls, rng, body, style, duration, side):
        g = dict(n=int(rng.integers(1, 3)), height=rng.uniform(0.35, 0.75), speed=rng.uniform(0.85, 1.2),
                 reach=rng.uniform(0.45, 0.7))  # fmt: skip
        g["cycle"] = 1.1 / g["speed"]
        return cls("kick", body, style, g["n"] * g["cycle"] + 0.5, side=side, settings=g)

    def pose(self, t):
        b, st, g, s = self.body, self.style, self.settings, self.side
        p = neutral(len(t), b, st)
        k = _sideflag(s)
        rel = t - 0.25
        c = g["cycle"]
        idx = np.clip(np.floor(rel / c), 0, g["n"] - 1)
        x = np.where((rel >= 0) & (rel < g["n"] * c), (rel - idx * c) / c, -1.0)
        back = bump(x, 0.0, 0.3, 0.3, 0.45)
        out = bump(x, 0.3, 0.5, 0.55, 0.95)
        A = p[f"{k}_ankle"]
        A[:, 2] += b.leg * (-0.35 * back + g["reach"] * out)
        A[:, 1] += b.leg * (0.15 * back + g["height"] * out)
        p[f"{k}_foot"] = (0.6 * out - 0.2 * back)[:, None]
        p[f"{k}_knee"] = (0.0, 0.2, 1.0)
        p["torso"][:, 0] -= 0.25 * out
        p["torso"][:, 1] += s * 0.08 * (out + back)
        p["h"] = p["h"] - 0.04 * (out + back)[:, None]
        for ss, pre in ((1, "l"), (-1, "r")):
            w = p[f"{pre}_wrist"]
            w[:, 0] += ss * 0.25 * b.arm * (out + back)
            w[:, 1] += 0.2 * b.arm * (out + back)
        return p


def make_action(name, rng, body, style, direction=None, side=None, duration=2.5, prev_hold: Pose | None = None) -> Action:
    """Sample an action's settings. `side` (+1 left / -1 right) for sided actions and one-footed hops."""
    if name in ("walk", "jog", "run"):
        return Gait.sample(name, rng, body, style, direction, duration)
    if name == "jump":
        return Jump.sample(rng, body, style, direction, duration, side=side)
    if name == "jumping jacks":
        return JumpingJacks.sample(rng, body, style, duration)
    if name == "crawl":
        return Crawl.sample(rng, body, style, direction, duration)
    if name in ("sit", "kneel", "crouch"):
        return Posture.sample(name, rng, body, style, duration, side=side if name == "kneel" else None)
    if name == "squat":
        return Squat.sample(rng, body, style, duration)
    if name == "kick":
        return Kick.sample(rng, body, style, duration, side)
    if name == "stand up":
        if prev_hold is None:
            raise ValueError("'stand up' needs the pose of the previous segment (sit, kneel, crouch or crawl)")
        return StandUp.sample(rng, body, style, duration, prev_hold)
    if name in ("wave", "knock", "catch", "throw", "take/pick something up", "place something"):
        return ArmAction.sample(name, rng, body, style, duration, side)
    raise ValueError(f"unknown action {name!r}; expected one of {ALL_ACTIONS}")
