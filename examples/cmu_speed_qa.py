"""A custom QA file from real mocap, as a user would write one: "How fast is the person moving?" about the CMU trials
in ../shared/data, answered from CMU's own trial descriptions.

The demo is never asked this (it answers what a person does, not how fast), and its answer words (slow / normal /
fast) are new to it, so `humocon finetune` on the training file and `--eval-data` on the held-out file show whether
fine-tuning a published checkpoint on one's own real data teaches it. The held-out file takes every second trial of
each answer (the only runs are one subject's, so a split by subject would hold out no "fast" at all); the demo has
seen these motions in its own training, with "what is the person doing?" questions, never with this one.

    python examples/cmu_speed_qa.py --out runs/cmu_speed            # writes train.jsonl and heldout.jsonl
    humocon finetune --model humocon_demo --data runs/cmu_speed/train.jsonl \
        --eval-data runs/cmu_speed/heldout.jsonl --output-dir runs/cmu_speed/ft
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from humocon_hf.data.loaders import load_cmu_bvh

QUESTION = "How fast is the person moving: slow, normal or fast?"

# CMU's description of a trial -> the answer; jumps (and anything else) have no speed and are left out.
SPEED_OF_DESCRIPTION = {
    "slow walk": "slow",
    "slow walk/stride": "slow",
    "walk": "normal",
    "walk/stride": "normal",
    "walk, exaggerated stride": "normal",
    "walk on uneven terrain": "normal",
    "brisk walk": "fast",
    "run": "fast",
}


def speed_records(cmu_dir: Path, descriptions_csv: Path) -> list[dict]:
    """One record per CMU trial whose description names a speed: motion path, subject, question and answer."""
    trials = load_cmu_bvh(cmu_dir, descriptions_csv)
    records = []
    for row in trials:
        answer = SPEED_OF_DESCRIPTION.get((row["caption"] or "").strip().lower())
        if answer is not None:
            records.append({"id": f"cmu_speed_{row['id']}", "motion_path": row["motion_path"],
                            "subject": int(row["subject"]), "question": QUESTION, "answer": answer})
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    parser.add_argument("--cmu-dir", default=str(shared / "cmu_bvh"))
    parser.add_argument("--descriptions", default=str(shared / "cmu_index" / "CMU_data.csv"))
    parser.add_argument("--out", required=True, help="folder for train.jsonl and heldout.jsonl")
    parser.add_argument("--heldout-every", type=int, default=2, help="hold out every k-th trial of each answer")
    args = parser.parse_args(argv)
    records = speed_records(Path(args.cmu_dir), Path(args.descriptions))
    if not records:
        raise SystemExit(f"no CMU trial with a speed in its description under {args.cmu_dir}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    held = set()
    for answer in sorted({r["answer"] for r in records}):
        of_answer = sorted((r for r in records if r["answer"] == answer), key=lambda r: r["id"])
        held |= {r["id"] for r in of_answer[args.heldout_every - 1 :: args.heldout_every]}
    for name, part in (("train", [r for r in records if r["id"] not in held]),
                       ("heldout", [r for r in records if r["id"] in held])):
        with open(out / f"{name}.jsonl", "w") as f:
            for record in part:
                f.write(json.dumps(record) + "\n")
        print(f"{name}: {len(part)} trials, answers {dict(Counter(r['answer'] for r in part))}")


if __name__ == "__main__":
    main()
