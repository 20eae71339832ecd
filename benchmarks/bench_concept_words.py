"""Concepts in words, checked on real motion: how often the concepts covering the moving part of labelled real clips
name the moving limb and say whether the person travels (issue 30).

Clips from ../shared/data, labelled by their sources: HDM05 left kicks, right-hand reaches (depositFloorR,
grabHighR), squats, sneaks and jogs (side and action in the file name); Bandai one-handed waves, guides, beckonings and
punches (the side read from the motion by `infer_active_side`: the labels do not say it), its kick, walks, runs and
dashes; CMU walks and runs (trial descriptions). Per clip, `concept_word_accuracy` scores the frames where the named
limb moves (or the body travels); the table averages clips per kind, and the headline is the mean over the four
kinds (one arm, kick, walk/run, squat), so that the 200 walks do not drown the 20 kicks.

Held out: the clips of the run's own held-out split (HDM05 actor dg, Bandai styles angry / childish / old, CMU
subjects 2, 8, 14, 16); `describe_concepts` was designed on the other ("design") clips only. `--redescribe` describes
the concepts again from the run's training motions with the current `describe_concepts`, as the export stage does
(the checkpoint's stored words are the "stored" column). Example:

    python benchmarks/bench_concept_words.py /work/runs/vocab/seed0 /work/runs/vocab/seed1 --redescribe
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HELDOUT_HDM05_ACTORS = {"dg"}
HELDOUT_BANDAI_STYLES = {"angry", "childish", "old"}
HELDOUT_CMU_SUBJECTS = {2, 8, 14, 16}
KINDS = ("one arm", "kick", "walk/run", "squat")

# HDM05 action -> (kind, limb, travels)
_HDM05 = {
    "kickLFront1Reps": ("kick", "left leg", False),
    "depositFloorR": ("one arm", "right arm", False),
    "grabHighR": ("one arm", "right arm", False),
    "squat1Reps": ("squat", "legs", False),
    "sneak2StepsLStart": ("walk/run", "legs", True),
    "jogLeftCircle4StepsRstart": ("walk/run", "legs", True),
}
# Bandai content -> (kind, limb; "?arm" / "?leg": the side read from the motion, travels)
_BANDAI = {
    "bye": ("one arm", "?arm", False), "guide": ("one arm", "?arm", False), "call": ("one arm", "?arm", False),
    "punch": ("one arm", "?arm", False), "kick": ("kick", "?leg", False),
    **{c: ("walk/run", "legs", True) for c in ("walk", "walk-back", "walk-left", "walk-right", "run", "dash")},
}


def labelled_clips(shared: Path, fps: float, max_frames: int) -> list[dict]:
    """The labelled real clips as SMPL-22 joints at `fps` (the first `max_frames`, what the encoder reads)."""
    from humocon_hf.data.real_motion_qa import infer_active_side, load_hdm05
    from humocon_hf.processing.motion_io import load_motion

    clips = []

    def add(clip_id, source, path, kind, limb, travels, heldout, **kwargs):
        joints = load_motion(str(path), fps=fps, **kwargs).joints[:max_frames]
        if limb.startswith("?"):
            side = infer_active_side(joints, limb[1:])
            if side is None:
                return
            limb = f"{side} {limb[1:]}"
        clips.append({"id": clip_id, "source": source, "kind": kind, "limb": limb, "travels": travels,
                      "split": "heldout" if heldout else "design", "joints": joints.astype(np.float32)})

    for row in load_hdm05(shared / "hdm05_train"):
        if row["label"] in _HDM05:
            add(row["id"], "hdm05", row["motion_path"], *_HDM05[row["label"]], row["actor"] in HELDOUT_HDM05_ACTORS)
    for path in sorted((shared / "bandai_namco_1" / "data").glob("dataset-1_*.bvh")):
        _, content, style, _ = path.stem.split("_")
        if content in _BANDAI:
            add(path.stem, "bandai", path, *_BANDAI[content], style in HELDOUT_BANDAI_STYLES)
    from humocon_hf.data.real_mocap import load_cmu_bvh

    for row in load_cmu_bvh(shared / "cmu_bvh", shared / "cmu_index" / "CMU_data.csv"):
        if row["action"] in ("walk", "run", "jog"):
            add(row["id"], "cmu", row["motion_path"], "walk/run", "legs", True, row["subject"] in HELDOUT_CMU_SUBJECTS,
                source_fps=row["source_fps"])
    return clips


def training_descriptions(run: Path, model, feature_extractor, limit: int | None = 400, max_frames: int = 160) -> dict:
    """The concepts described from the run's training motions with the current `describe_concepts`, as the export
    stage does (its `_describe_concepts`: `limit` motions in all, real takes first, then procedural ones; None: every
    real take and 400 procedural motions)."""
    import datasets

    from humocon_hf.concepts import describe_concepts
    from humocon_hf.inference import row_motion
    from humocon_hf.pipeline.data import unique_motion_rows
    from humocon_hf.processing.motion_io import load_motion

    data = run / "stages" / "data"
    real_rows = json.loads((data / "cmu.json").read_text())
    if (data / "real.json").is_file():
        real_rows += json.loads((data / "real.json").read_text())
    limit = len(real_rows) + 400 if limit is None else limit
    motions, captions = [], []
    for row in unique_motion_rows(datasets.load_from_disk(str(data / "qa"))["train"])[: max(0, limit - len(real_rows))]:
        joints = row_motion(row)
        motions.append(load_motion(joints).joints if isinstance(joints, str) else joints)
        captions.append(row.get("caption"))
    for row in real_rows[:limit]:
        motions.append(np.load(row["motion_path"]))
        captions.append(row.get("caption"))
    described = describe_concepts(model.motion_encoder, feature_extractor, [m[:max_frames] for m in motions], captions)
    return {str(k): v["description"] for k, v in described.items()}


def summarize(rows: list[dict]) -> dict:
    """Per split and kind: clips and the mean over clips of limb / travel / both; "all": the mean over kinds."""
    out = {}
    for split in ("design", "heldout"):
        table = {}
        for kind in KINDS:
            scored = [r for r in rows if r["split"] == split and r["kind"] == kind and r["moving_frames"]]
            if scored:
                table[kind] = {"clips": len(scored), **{k: statistics.fmean(r[k + "_ok"] for r in scored)
                                                        for k in ("limb", "travel", "both")}}
        if table:
            table["all"] = {"clips": sum(t["clips"] for t in table.values()),
                            **{k: statistics.fmean(t[k] for t in table.values()) for k in ("limb", "travel", "both")}}
        out[split] = table
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="HuMoCon checkpoint folders (a `humocon demo` output folder)")
    parser.add_argument("--shared", default=str(SHARED), help="the shared data folder")
    parser.add_argument("--redescribe", action="store_true",
                        help="also score the words the current describe_concepts gives (needs the run's stages/data)")
    parser.add_argument("--describe-limit", type=int, default=400,
                        help="describe on this many training motions, real takes first, as the export stage does (400); "
                        "0: every real take and 400 procedural motions")
    parser.add_argument("--output", default=None, help="write every clip's scores and the tables as JSON here")
    parser.add_argument("--show", type=int, default=0, help="print the words of this many wrong clips per kind")
    args = parser.parse_args(argv)

    import torch

    from humocon_hf.concepts import concept_word_accuracy
    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor

    torch.set_grad_enabled(False)
    clips, report = None, {}
    for folder in map(Path, args.checkpoints):
        model = HuMoConForCausalLM.from_pretrained(folder).eval()
        fe = MotionVideoProcessor.from_pretrained(folder).motion_feature_extractor
        if clips is None:
            clips = labelled_clips(Path(args.shared), fe.fps, fe.max_frames)
            counts = {(c["split"], c["kind"]): 0 for c in clips}
            for c in clips:
                counts[c["split"], c["kind"]] += 1
            print(f"{len(clips)} labelled clips: " + ", ".join(f"{s} {k} {n}" for (s, k), n in sorted(counts.items())))
        variants = {"stored": model.config.motion_config.concept_descriptions or {}}
        if args.redescribe:
            variants["redescribed"] = training_descriptions(folder, model, fe, max_frames=fe.max_frames,
                                                            limit=args.describe_limit or None)
        for name, words in variants.items():
            rows = concept_word_accuracy(model.motion_encoder, fe, clips, words, resolve=name != "stored")
            table = summarize(rows)
            report[f"{folder.name}:{name}"] = {"table": table, "clips": rows}
            for split, kinds in table.items():
                cells = " | ".join(f"{k} {v['both']:.0%} (limb {v['limb']:.0%}, travel {v['travel']:.0%}, n={v['clips']})"
                                   for k, v in kinds.items())
                print(f"{folder.name} {name:<11} {split:<7} {cells}")
            for kind in KINDS if args.show else ():
                wrong = [r for r in rows if r["kind"] == kind and r["moving_frames"] and r["both_ok"] < 0.5]
                for r in wrong[: args.show]:
                    print(f"    {kind}: {r['id']} ({r['limb']}, travels={r['travels']}): both {r['both_ok']:.0%}; "
                          f"{r['words'][:4]}")
        sys.stdout.flush()
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
