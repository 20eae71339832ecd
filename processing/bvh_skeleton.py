"""Automatic mapping of any humanoid BVH skeleton onto the SMPL-22 joints.

Rig tables (``motion_io.BVH_RIG_TABLES``) are exact for the rigs they name; every other humanoid goes through
:func:`auto_rig_table`, which needs no table per rig. It works on the skeleton's *topology and geometry* first and
uses joint *names* to label what the geometry found:

1. **Body chains from the tree.** Bone lengths are measured on the posed skeleton (forward kinematics on a sample
   of frames), so rigs whose rest offsets point along a bone axis (Maya / MotionBuilder exports) are handled like
   any other. Bones whose length changes over the clip are translations, not bones (``joint_Root`` above the
   hips), and split the body from the rest. The five extremities (two feet, two hands, the head) are the leaves
   picked by farthest-point sampling on the tree metric: fingers, toes, eyes, twist bones and other short
   branches are never the farthest. The two feet are the pair split off from the other three by the longest
   internal path (the spine); the head is the one of the remaining three closest to where the other two meet.
2. **Joints along each chain.** Each chain (pelvis -> toe, chest -> hand, chest -> head) is labelled by the names
   it has (``UpperArm_L``, ``mixamorig:LeftForeArm``, ``DEF-thigh.L``, ``calf_r``, ``lShldr``, ``lfemur``...:
   normalised for case, separators, namespaces, rig prefixes and side markers, then matched against synonyms),
   and where names are missing or ambiguous by bone proportions of the SMPL template. Missing SMPL joints (no
   collar, no toe) are interpolated along the chain and reported.
3. **Sides.** Left/right come from the names where the rig has them and from the geometry otherwise (up x the
   direction the toes point); ``motion_io.load_bvh`` then checks the labelled sides of legs and arms against the
   geometry and fixes a mislabelled pair with a warning.

The result is a table in the format of the rig tables with joint *indices* instead of names, so the same code
(`_map_to_smpl`, trunk derivation, units, up axis) turns it into SMPL-22 positions.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .smpl22 import SMPL22_JOINT_NAMES

__all__ = ["AutoRig", "auto_rig_table", "forward_direction", "parse_joint_name", "resolve_joint_map", "JOINT_MAP_KEYS"]

_LEFT = {"left", "l", "lt", "lft"}
_RIGHT = {"right", "r", "rt", "rgt"}
# Tokens that carry no anatomy: rig namespaces and prefixes (Blender Rigify DEF-/ORG-/MCH-, Reallusion CC_Base_,
# 3ds Max Bip01, generic jnt_/bn_/b_).
_NOISE = {"def", "org", "mch", "cc", "base", "bip", "bip01", "bip001", "b", "bn", "bone", "jnt", "jt", "j", "mixamorig",
          "skel", "rig", "sk", "ik", "fk", "ctrl", "ch", "char", "character", "deform"}

# Synonyms of each SMPL limb joint, as normalised base names (side and digits removed).
_SYNONYMS: dict[str, set] = {
    "hip": {"upleg", "upperleg", "thigh", "femur", "hip", "legupper", "uleg", "upperthigh", "thighupper"},
    "knee": {"knee", "shin", "leg", "lowerleg", "calf", "tibia", "crus", "leglower", "loleg", "lowleg"},
    "ankle": {"ankle", "foot"},
    "foot": {"toe", "toes", "toebase", "ball", "forefoot", "toebasefoot", "football", "balloffoot"},
    "collar": {"collar", "clavicle", "clav", "shoulder", "scapula", "collarbone"},
    "shoulder": {"shoulder", "shldr", "upperarm", "arm", "humerus", "uparm", "armupper", "uarm"},
    "elbow": {"elbow", "forearm", "lowerarm", "radius", "loarm", "armlower", "ulna", "lowarm"},
    "wrist": {"wrist", "hand"},
}
_VOCABULARY = set().union(*_SYNONYMS.values()) | {"hipjoint", "buttock", "head", "neck", "fingers", "thumb", "eye"}

# Chain targets in proximal-to-distal order, and where each sits along its chain on the SMPL template, as a
# fraction of the path from the branch point (pelvis / chest) to the chain's tip (toe tip / finger tip): pelvis ->
# hip 0.11 m, thigh 0.39, shank 0.41, ankle -> ball 0.14, ball -> toe tip 0.06; chest -> collar 0.08, clavicle
# 0.12, upper arm 0.26, forearm 0.25, wrist -> finger tip 0.18. Unnamed chains are fitted to these.
_LEG_TARGETS = ("hip", "knee", "ankle", "foot")
_ARM_TARGETS = ("collar", "shoulder", "elbow", "wrist")
_LEG_FRACTIONS = (0.10, 0.45, 0.82, 0.95)
_ARM_FRACTIONS = (0.09, 0.225, 0.52, 0.80)

# Longest limb chain considered (real rigs: <= ~15 joints from the pelvis / chest to a toe or finger tip).
_MAX_CHAIN = 40

JOINT_MAP_KEYS = tuple(SMPL22_JOINT_NAMES) + ("spine",)


def parse_joint_name(name: str) -> tuple[str | None, str]:
    """``(side, base)`` of a joint name: side ``"left"`` / ``"right"`` / None, base a normalised anatomy word.

    ``mixamorig:LeftUpLeg`` -> ("left", "upleg"); ``UpperArm_L`` -> ("left", "upperarm"); ``DEF-thigh.R.001`` ->
    ("right", "thigh"); ``CC_Base_L_Calf`` -> ("left", "calf"); ``lfemur`` -> ("left", "femur"); ``lowerback`` ->
    (None, "lowerback"); ``HipLeft`` -> ("left", "hip").
    """
    n = name.split(":")[-1].split("|")[-1]
    n = re.sub(r"([a-z])([A-Z])", r"\1 \2", n)
    n = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", n)
    tokens = [t.lower() for t in re.split(r"[^A-Za-z0-9]+", n) if t]
    side = None
    kept = []
    for t in tokens:
        if t in _LEFT or t in _RIGHT:
            if side is None:
                side = "left" if t in _LEFT else "right"
            continue
        if t in _NOISE or t.isdigit():
            continue
        kept.append(t)
    if not kept:  # the name was only noise: keep what there was
        kept = [t for t in tokens if not t.isdigit() and t not in _LEFT and t not in _RIGHT] or tokens
    base = re.sub(r"\d+$", "", "".join(kept)) or "".join(kept)
    if side is None:  # a side glued to a lower-case word: lfemur, rshoulder, leftarm
        m = re.match(r"^(left|right|l|r)(.+)$", base)
        if m and re.sub(r"\d+$", "", m.group(2)) in _VOCABULARY:
            side = "left" if m.group(1).startswith("l") else "right"
            base = re.sub(r"\d+$", "", m.group(2))
    return side, base


@dataclass
class AutoRig:
    """What :func:`auto_rig_table` found.

    Attributes:
        table: SMPL joint -> BVH joint index, or ``("lerp", a, b, t)``; ``"spine"`` -> tuple of indices.
        interpolated: SMPL joints with no counterpart in the rig, and how they were placed.
        notes: other decisions worth showing a user (sides from geometry, ...).
        sides_from_names: whether left/right came from the joint names (else from the geometry).
    """

    table: dict[str, Any]
    interpolated: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sides_from_names: bool = True


class _Tree:
    """The joint tree with bone lengths measured on posed frames. Linear in the number of joints (hostile files may
    have thousands): no per-joint ancestor lists, single-source distances by one traversal."""

    def __init__(self, parents: Sequence[int], positions: np.ndarray):
        self.parents = list(parents)
        n = len(self.parents)
        self.children: list[list[int]] = [[] for _ in range(n)]
        for j, p in enumerate(self.parents):
            if p >= 0:
                self.children[p].append(j)
        self.pos = positions  # (K, J, 3)
        self.mean_pos = positions.mean(axis=0)
        length = np.zeros(n)
        rigid = np.ones(n, dtype=bool)
        idx = np.array([j for j in range(n) if self.parents[j] >= 0], dtype=np.int64)
        if idx.size:
            d = np.linalg.norm(positions[:, idx] - positions[:, [self.parents[j] for j in idx]], axis=-1)  # (K, M)
            length[idx] = np.median(d, axis=0)
            rigid[idx] = (d.max(axis=0) - d.min(axis=0)) <= 0.05 * np.maximum(length[idx], 1e-9) + 1e-9
        self.length = length
        self.rigid = rigid
        self.depth = np.zeros(n)  # path length from the root (BVH lists parents before children)
        self.level = np.zeros(n, dtype=np.int64)
        for j in range(n):
            p = self.parents[j]
            if p >= 0:
                self.depth[j] = self.depth[p] + length[j]
                self.level[j] = self.level[p] + 1

    def ancestors(self, j: int) -> list[int]:
        """``j`` and its ancestors up to the root."""
        out = []
        while j >= 0:
            out.append(j)
            j = self.parents[j]
        return out

    def lca(self, a: int, b: int) -> int:
        while self.level[a] > self.level[b]:
            a = self.parents[a]
        while self.level[b] > self.level[a]:
            b = self.parents[b]
        while a != b:
            a, b = self.parents[a], self.parents[b]
        return a

    def dist(self, a: int, b: int) -> float:
        return float(self.depth[a] + self.depth[b] - 2.0 * self.depth[self.lca(a, b)])

    def distances_from(self, src: int) -> np.ndarray:
        """Tree-metric distance from ``src`` to every joint (one traversal)."""
        out = np.full(len(self.parents), -1.0)
        out[src] = 0.0
        stack = [src]
        while stack:
            j = stack.pop()
            neighbours = list(self.children[j]) + ([self.parents[j]] if self.parents[j] >= 0 else [])
            for k in neighbours:
                if out[k] < 0:
                    out[k] = out[j] + (self.length[k] if self.parents[k] == j else self.length[j])
                    stack.append(k)
        return out

    def path_down(self, top: int, leaf: int) -> list[int]:
        """Joints from just below ``top`` down to ``leaf`` (``top`` an ancestor of ``leaf``)."""
        chain = []
        for x in self.ancestors(leaf):
            if x == top:
                return chain[::-1]
            chain.append(x)
        raise ValueError("not an ancestor")

    def path(self, a: int, b: int) -> list[int]:
        """Joints on the tree path from ``a`` to ``b``, both included."""
        c = self.lca(a, b)
        up = self.ancestors(a)
        up = up[: up.index(c) + 1]
        down = self.ancestors(b)
        down = down[: down.index(c)]
        return up + down[::-1]

    def body_component(self) -> np.ndarray:
        """Joints connected to the longest rigid part of the tree (translations split it)."""
        n = len(self.parents)
        comp = np.arange(n)

        def find(x):
            while comp[x] != x:
                comp[x] = comp[comp[x]]
                x = comp[x]
            return x

        for j, p in enumerate(self.parents):
            if p >= 0 and self.rigid[j]:
                comp[find(j)] = find(p)
        roots = np.array([find(j) for j in range(n)])
        totals: dict[int, float] = {}
        for j in range(n):
            if self.parents[j] >= 0 and self.rigid[j]:
                totals[roots[j]] = totals.get(roots[j], 0.0) + self.length[j]
        if not totals:
            return np.ones(n, dtype=bool)
        best = max(totals, key=totals.get)
        return roots == best


def _farthest_leaves(tree: _Tree, leaves: list[int], count: int) -> list[int]:
    """``count`` leaves by farthest-point sampling on the tree metric, starting from the tree's diameter (found by
    the double sweep, exact on trees)."""
    leaves_arr = np.asarray(leaves)
    a = int(leaves_arr[np.argmax(tree.distances_from(int(leaves_arr[0]))[leaves_arr])])
    from_a = tree.distances_from(a)
    b = int(leaves_arr[np.argmax(from_a[leaves_arr])])
    picked = [a, b]
    nearest = np.minimum(from_a, tree.distances_from(b))[leaves_arr]
    while len(picked) < count:
        nearest[np.isin(leaves_arr, picked)] = -1.0
        new = int(leaves_arr[np.argmax(nearest)])
        picked.append(new)
        nearest = np.minimum(nearest, tree.distances_from(new)[leaves_arr])
    return picked


def _split_strength(tree: _Tree, pair: tuple[int, int], others: Sequence[int]) -> float:
    """Length of the internal path separating ``pair`` from every two of ``others`` (4-point condition)."""
    a, b = pair
    best = np.inf
    for c, e in itertools.combinations(others, 2):
        inner = tree.dist(a, b) + tree.dist(c, e)
        cross = min(tree.dist(a, c) + tree.dist(b, e), tree.dist(a, e) + tree.dist(b, c))
        best = min(best, 0.5 * (cross - inner))
    return best


def forward_direction(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, foot: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Per-frame direction the person faces, from one or both legs (arrays (..., 3)); not normalised.

    Two label-free cues, summed so that each counts by how clear it is: where the toes point (ankle -> foot; clear
    when standing, can trail backwards in a sprint's swing) and where the knee bends (its offset from the
    hip-ankle line; knees bend forwards, clear in walking, running and crouching).
    """
    line = ankle - hip
    t = ((knee - hip) * line).sum(-1, keepdims=True) / np.maximum((line * line).sum(-1, keepdims=True), 1e-12)
    bend = knee - (hip + t * line)
    fwd = (foot - ankle) + bend
    return fwd - up * (fwd * up).sum(-1, keepdims=True)


def _chain_side(names: Sequence[str], chain: Sequence[int]) -> str | None:
    votes = [parse_joint_name(names[j])[0] for j in chain]
    left, right = votes.count("left"), votes.count("right")
    if left == right:
        return None
    return "left" if left > right else "right"


def _assign_chain(tree: _Tree, names: Sequence[str], chain: list[int], targets: Sequence[str],
                  fractions: Sequence[float], optional: str, is_end: Sequence[bool]) -> tuple[dict[str, int], str | None]:
    """Pick one chain joint per target, in order: names first, then where the joints sit along the chain.

    Returns ``{target: joint}`` and the optional target left out (``None`` when all four were placed). Among
    monotone choices, the one with most name matches wins; ties go to the closest fit of the SMPL template's
    fractions along the chain, then to the earliest joints. ``optional`` (collar / foot) may be absent.
    """
    if len(chain) > _MAX_CHAIN:  # combinations grow as n^4: refuse absurd chains instead of hanging
        raise ValueError(f"a limb chain of {len(chain)} joints (at most {_MAX_CHAIN} expected)")
    bases = [parse_joint_name(names[j])[1] for j in chain]
    start = tree.depth[tree.parents[chain[0]]]
    length = max(float(tree.depth[chain[-1]] - start), 1e-9)
    along = [(tree.depth[j] - start) / length for j in chain]
    best = None
    for size in (len(targets), len(targets) - 1):
        if size > len(chain):
            continue
        use = [(t, f) for t, f in zip(targets, fractions) if size == len(targets) or t != optional]
        for combo in itertools.combinations(range(len(chain)), size):
            if any(is_end[chain[i]] for i in combo[:-1]):  # end sites only as the most distal target
                continue
            matches = sum(bases[i] in _SYNONYMS[t] for i, (t, _) in zip(combo, use))
            fit = sum((along[i] - f) ** 2 for i, (_, f) in zip(combo, use)) + (0.05 if size < len(targets) else 0.0)
            key = (-matches, round(fit, 6), combo)
            if best is None or key < best[0]:
                best = (key, {t: chain[i] for i, (t, _) in zip(combo, use)}, None if size == len(targets) else optional)
    if best is None:
        raise ValueError(f"a chain of {len(chain)} joint(s) is too short for {', '.join(targets)}")
    return best[1], best[2]


def auto_rig_table(names: Sequence[str], parents: Sequence[int], positions: np.ndarray, is_end_site: Sequence[bool],
                   source: str = "<bvh>") -> AutoRig:
    """Map a humanoid skeleton onto SMPL-22 from its tree, its posed joint positions and its joint names.

    Args:
        names / parents / is_end_site: the BVH hierarchy (end sites included as joints).
        positions: (K, J, 3) world positions of every joint on K sample frames, any units and axes.

    Raises:
        ValueError: the skeleton is not a humanoid (fewer than five limbs, no two legs below a spine...), naming
            what was found and how to pass ``joint_map``.
    """
    tree = _Tree(parents, np.asarray(positions, dtype=np.float64))
    body = tree.body_component()
    leaves = [j for j in range(len(names)) if not tree.children[j] and body[j]]
    if len(leaves) < 5:
        raise ValueError(_not_humanoid(names, source, f"the skeleton has {len(leaves)} branch ends, a humanoid has at "
                                                       "least five (two feet, two hands, the head)"))
    ends = _farthest_leaves(tree, leaves, 5)
    strengths = {pair: _split_strength(tree, pair, [x for x in ends if x not in pair])
                 for pair in itertools.combinations(ends, 2)}
    feet = max(strengths, key=strengths.get)
    if strengths[feet] <= 0:
        raise ValueError(_not_humanoid(names, source, "no pair of limbs hangs off a spine (the five extremities "
                                                      f"{[names[x] for x in ends]} meet at one joint)"))
    upper = [x for x in ends if x not in feet]
    # The head: closest to where the other two upper extremities meet.
    head_leaf = min(upper, key=lambda x: tree.dist(x, tree.lca(*[y for y in upper if y != x])))
    hands = tuple(x for x in upper if x != head_leaf)
    hips_at = tree.lca(*feet)
    chest = tree.lca(*hands)
    if chest in tree.ancestors(hips_at):
        raise ValueError(_not_humanoid(names, source, f"the arms ({names[hands[0]]}, {names[hands[1]]}) branch below the "
                                                      f"legs ({names[feet[0]]}, {names[feet[1]]})"))
    interpolated: dict[str, str] = {}
    notes: list[str] = []

    legs = [tree.path_down(hips_at, f) for f in feet]
    arms = [tree.path_down(chest, h) for h in hands]
    head_top = tree.lca(chest, head_leaf)
    head_chain = tree.path_down(head_top, head_leaf)

    # Sides: names where both chains of a pair say opposite sides, else geometry.
    def sides(chains):
        named = [_chain_side(names, c) for c in chains]
        if set(named) == {"left", "right"}:
            return named, True
        return None, False

    leg_sides, legs_named = sides(legs)
    arm_sides, arms_named = sides(arms)

    table: dict[str, Any] = {}
    leg_parts = []
    if max(len(c) for c in legs + arms) > _MAX_CHAIN:
        raise ValueError(_not_humanoid(names, source, f"a limb chain has {max(len(c) for c in legs + arms)} joints, "
                                                      f"more than the {_MAX_CHAIN} a humanoid limb has"))
    arm_parts = []
    try:
        for chain in legs:
            leg_parts.append(_assign_chain(tree, names, chain, _LEG_TARGETS, _LEG_FRACTIONS, "foot", is_end_site))
        for chain in arms:
            arm_parts.append(_assign_chain(tree, names, chain, _ARM_TARGETS, _ARM_FRACTIONS, "collar", is_end_site))
    except ValueError as err:  # a chain too short for hip-knee-ankle / shoulder-elbow-wrist
        raise ValueError(_not_humanoid(names, source, f"{err} in a limb")) from None

    # Up from the ankles to the head (any axis convention).
    mean = tree.mean_pos
    ankles = 0.5 * (mean[leg_parts[0][0]["ankle"]] + mean[leg_parts[1][0]["ankle"]])
    up = mean[head_leaf] - ankles
    up /= max(np.linalg.norm(up), 1e-9)
    if not (legs_named and arms_named):
        # Sides from geometry: forward where the toes point; left = up x forward.
        pos = tree.pos
        fwd = sum(forward_direction(pos[:, p["hip"]], pos[:, p["knee"]], pos[:, p["ankle"]], pos[:, p["foot"]], up)
                  for p, _ in leg_parts).mean(axis=0)
        if np.linalg.norm(fwd) < 1e-9:
            raise ValueError(_not_humanoid(names, source, "the rig's names do not say left and right and it has no "
                                                          "toe joints to tell front from back"))
        left_dir = np.cross(up, fwd)
        if not legs_named:
            a, b = leg_parts[0][0]["hip"], leg_parts[1][0]["hip"]
            leg_sides = ["left", "right"] if (mean[a] - mean[b]) @ left_dir > 0 else ["right", "left"]
            notes.append("leg sides from the geometry (names do not say left/right)")
        if not arms_named:
            a, b = arm_parts[0][0]["shoulder"], arm_parts[1][0]["shoulder"]
            arm_sides = ["left", "right"] if (mean[a] - mean[b]) @ left_dir > 0 else ["right", "left"]
            notes.append("arm sides from the geometry (names do not say left/right)")

    for side, (parts, missing) in zip(leg_sides, leg_parts):
        for t, j in parts.items():
            table[f"{side}_{t}"] = j
        if missing == "foot":
            ankle = parts["ankle"]
            after = [c for c in tree.children[ankle]]
            if after:  # an end site or short bone after the ankle: the toe tip
                table[f"{side}_foot"] = after[0]
                interpolated[f"{side}_foot"] = f"the end of {names[ankle]}"
            else:
                table[f"{side}_foot"] = ankle
                interpolated[f"{side}_foot"] = f"no toe joint: placed at {names[ankle]}"
    for side, (parts, missing) in zip(arm_sides, arm_parts):
        for t, j in parts.items():
            table[f"{side}_{t}"] = j
        if missing == "collar":
            table[f"{side}_collar"] = ("lerp", chest, parts["shoulder"], 0.5)
            interpolated[f"{side}_collar"] = f"half-way from {names[chest]} to {names[parts['shoulder']]}"
        else:
            collar, shoulder = parts["collar"], parts["shoulder"]
            # A collar joint at the spine (the bone starts at the chest: raw CMU "lclavicle") is moved half-way to
            # the shoulder, where SMPL's collar sits.
            d_chest = np.linalg.norm(tree.mean_pos[collar] - tree.mean_pos[chest])
            d_shoulder = np.linalg.norm(tree.mean_pos[shoulder] - tree.mean_pos[collar])
            if d_chest < 0.25 * d_shoulder:
                table[f"{side}_collar"] = ("lerp", collar, shoulder, 0.5)
                interpolated[f"{side}_collar"] = f"half-way from {names[collar]} (at the spine) to {names[shoulder]}"

    # Neck and head along the head chain; the spine is what lies between the legs' and the arms' branch points.
    real = [j for j in head_chain if not is_end_site[j]]
    bases = [parse_joint_name(names[j])[1] for j in head_chain]
    # Of several neck joints (CMU's lowerneck / upperneck) SMPL's neck is the first above the shoulders.
    necks = [j for j, b in zip(head_chain, bases) if "neck" in b and not is_end_site[j]]
    shoulder_height = np.mean([mean[parts["shoulder"]] @ up for parts, _ in arm_parts])
    neck = next((j for j in necks if mean[j] @ up > shoulder_height), necks[-1] if necks else None)
    head = next((j for j, b in zip(head_chain, bases) if b == "head" and (neck is None or head_chain.index(j) > head_chain.index(neck))), None)
    if neck is None and head is None:
        above = [j for j in real if mean[j] @ up > shoulder_height]
        if len(above) >= 2:  # unnamed: the first joint above the shoulders and the next one
            neck, head = above[0], above[1]
        elif len(real) >= 2:
            neck, head = real[0], real[1]
        elif real:
            head = real[0]
        else:
            head = head_chain[-1]
    if head is None:
        after = head_chain[head_chain.index(neck) + 1:]
        head = next((j for j in after if not is_end_site[j]), after[0] if after else neck)
        if head == neck:
            interpolated["head"] = f"no head joint: placed at {names[neck]}"
    if neck is None:
        before = [j for j in head_chain[: head_chain.index(head)] if not is_end_site[j]]
        if before:
            neck = before[-1] if len(before) == 1 else before[0]
        else:
            table["neck"] = ("lerp", chest, head, 0.5)
            interpolated["neck"] = f"half-way from {names[chest]} to {names[head]}"
    if neck is not None:
        table["neck"] = neck
    table["head"] = head
    spine = [j for j in tree.path(hips_at, chest) if j != hips_at]
    if neck is not None:
        spine += [j for j in head_chain[: head_chain.index(neck)] if not is_end_site[j]]
    table["spine"] = tuple(spine)
    if len(spine) < 3:
        interpolated["spine1..3"] = f"{len(spine)} spine joint(s) in the rig: spine1-3 placed along pelvis-neck"
    return AutoRig(table=table, interpolated=interpolated, notes=notes, sides_from_names=legs_named and arms_named)


def _not_humanoid(names: Sequence[str], source: str, why: str) -> str:
    shown = [n for n in names if not n.endswith("_end")]
    return (
        f"{source}: cannot map this BVH skeleton onto SMPL-22: {why}. The file's joints ({len(shown)}): {shown[:80]}. "
        "If it is a humanoid, name its joints with load_bvh(..., joint_map={'left_hip': '<joint>', ...}) "
        f"(keys: {list(JOINT_MAP_KEYS)})"
    )


def resolve_joint_map(joint_map: Mapping[str, Any], names: Sequence[str], source: str) -> dict[str, Any]:
    """A user's ``{smpl_joint: bvh_joint_name}`` (``"spine"``: a list of names) as a table of joint indices."""
    if not isinstance(joint_map, Mapping):
        raise ValueError(f"{source}: joint_map must be a dict {{smpl_joint: bvh_joint_name}}, got {type(joint_map).__name__}")
    exact = {}
    loose = {}
    for i, n in enumerate(names):
        exact.setdefault(n, i)
        loose.setdefault(n.split(":")[-1].lower(), i)

    def index(value, key):
        if not isinstance(value, str):
            raise ValueError(f"{source}: joint_map[{key!r}] must be a joint name (string), got {value!r}")
        i = exact.get(value, loose.get(value.split(":")[-1].lower()))
        if i is None:
            shown = [n for n in names if not n.endswith("_end")]
            raise ValueError(f"{source}: joint_map[{key!r}] = {value!r} is not a joint of this file; its joints: {shown[:80]}")
        return i

    out: dict[str, Any] = {}
    for key, value in joint_map.items():
        if key not in JOINT_MAP_KEYS:
            raise ValueError(f"{source}: unknown SMPL joint {key!r} in joint_map; valid keys: {list(JOINT_MAP_KEYS)}")
        if key == "spine":
            if not isinstance(value, (str, list, tuple)):
                raise ValueError(f"{source}: joint_map['spine'] must be a joint name or a list of names bottom to top, "
                                 f"got {value!r}")
            values = [value] if isinstance(value, str) else list(value)
            out[key] = tuple(index(v, key) for v in values)
        elif key in ("pelvis", "spine1", "spine2", "spine3"):
            raise ValueError(f"{source}: joint_map[{key!r}]: pelvis and spine1-3 are derived from the hips, the neck "
                             "and the rig's spine; pass 'spine': [names bottom to top] instead")
        else:
            out[key] = index(value, key)
    # Two limb joints on one file joint collapse a bone to a point, silently. Neck and head may share one (a rig
    # without a head joint), as may the trunk.
    taken: dict[int, str] = {}
    for key, i in out.items():
        if key in ("spine", "neck", "head"):
            continue
        if i in taken:
            raise ValueError(f"{source}: joint_map maps both {taken[i]!r} and {key!r} to {names[i]!r}; each limb joint "
                             "needs its own joint of the file")
        taken[i] = key
    return out
