"""What does a trained motion concept encoder keep? Linear probes on held-out motions of a demo output folder.

For every motion token of the procedural benchmark, the label of the action segment under the token's centre frame
is known by construction. A multinomial logistic regression (full-batch L-BFGS, in torch) is fitted on the training
motions and scored on the test motions, from three inputs:

* `input`: the encoder's input, the normalised pose features of the token's frames (flattened);
* `continuous`: the encoder's per-token features before quantisation (`last_hidden_state`);
* `quantised`: the codebook vectors the LLM receives (`quantized`).

Probed labels: `action` (walk, wave, ...), `body_part` (left hand, ..., or none) and `side` (left vs right, limb
segments only). A label the input predicts well but the quantised features do not is information the concept
bottleneck drops before the LLM sees it.

    .venv/bin/python scripts/probe_motion_encoder.py humocon_demo
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

LABELS = ("action", "body_part", "side")


def _label(segment: dict, name: str):
    if name == "action":
        return segment["action"]
    if name == "body_part":
        return segment["body_part"] or "none"
    part = segment["body_part"]
    return None if not part else part.split()[0]  # "left" / "right"


def collect(split, processor, encoder, batch_size: int = 32):
    """Per-token inputs, features and segment labels of one split (one row per distinct motion)."""
    rows = list({r["motion_id"]: r for r in split}.values())
    stride = encoder.config.motion_token_stride
    feats = {"input": [], "continuous": [], "quantised": []}
    labels = {name: [] for name in LABELS}
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        inputs = processor.motion_feature_extractor([np.load(r["motion_path"]) for r in chunk], return_tensors="pt")
        with torch.no_grad():
            out = encoder(motion_values=inputs["motion_values"], motion_attention_mask=inputs["motion_attention_mask"])
        for b, row in enumerate(chunk):
            for t in range(int(out.attention_mask[b].sum())):
                centre = t * stride + stride // 2
                segment = next((s for s in row["segments"] if s["start"] <= centre < s["end"]), None)
                frames = inputs["motion_values"][b, t * stride : (t + 1) * stride]
                if segment is None or frames.shape[0] < stride:
                    continue
                feats["input"].append(frames.reshape(-1))
                feats["continuous"].append(out.last_hidden_state[b, t])
                feats["quantised"].append(out.quantized[b, t])
                for name in LABELS:
                    labels[name].append(_label(segment, name))
    return {k: torch.stack(v).float() for k, v in feats.items()}, labels


def probe_accuracy(x_train, y_train, x_test, y_test, steps: int = 200, weight_decay: float = 1e-3) -> float:
    """Held-out accuracy of an L2-regularised multinomial logistic regression on standardised features."""
    mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-6)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    classes = y_train.max().item() + 1
    linear = torch.nn.Linear(x_train.shape[1], classes)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(x_train), y_train)
        loss = loss + weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return (linear(x_test).argmax(-1) == y_test).float().mean().item()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo_dir", type=Path, help="output folder of `humocon demo` (holds stages/data, stages/pretrain)")
    args = parser.parse_args(argv)

    import datasets

    from humocon_hf.modeling.modeling_humocon_encoders import HuMoConMotionEncoder
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor

    stages = args.demo_dir / "stages"
    qa = datasets.load_from_disk(str(stages / "data" / "qa"))
    processor = MotionVideoProcessor.from_pretrained(stages / "data" / "processor")
    encoder = HuMoConMotionEncoder.from_pretrained(stages / "pretrain" / "motion_encoder").eval()
    torch.manual_seed(0)
    train_x, train_labels = collect(qa["train"], processor, encoder)
    test_x, test_labels = collect(qa["test"], processor, encoder)

    results = {}
    print(f"{'label':10} {'tokens':>7} {'majority':>9} {'input':>7} {'continuous':>11} {'quantised':>10}")
    for name in LABELS:
        keep_train = [i for i, y in enumerate(train_labels[name]) if y is not None]
        keep_test = [i for i, y in enumerate(test_labels[name]) if y is not None]
        vocab = sorted({train_labels[name][i] for i in keep_train})
        keep_test = [i for i in keep_test if test_labels[name][i] in vocab]
        if len(vocab) < 2 or not keep_test:
            print(f"{name:10} not enough labelled tokens to probe ({len(vocab)} classes, {len(keep_test)} test tokens)")
            continue
        y_train = torch.tensor([vocab.index(train_labels[name][i]) for i in keep_train])
        y_test = torch.tensor([vocab.index(test_labels[name][i]) for i in keep_test])
        row = {"tokens": len(keep_test),
               "majority": (y_test == torch.bincount(y_train).argmax()).float().mean().item()}
        for kind in ("input", "continuous", "quantised"):
            row[kind] = probe_accuracy(train_x[kind][keep_train], y_train, test_x[kind][keep_test], y_test)
        results[name] = row
        print(f"{name:10} {row['tokens']:7d} {row['majority']:9.3f} {row['input']:7.3f} {row['continuous']:11.3f} "
              f"{row['quantised']:10.3f}")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
