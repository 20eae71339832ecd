"""How long `humocon ask` makes a user wait once the model is loaded: reading the motion file, the chat template and
the processor, the prefill, the first generated token, and the decoding rate after it, float32 and bf16 autocast
measured alternately in one run (ratio = float32 time / bf16 time).

The path is the command's own (`humocon_hf.inference`: `load_media`, `user_message`, `chat_inputs`, greedy
`generate` as in `stream_answer`); a streamer records when each token arrives. `humocon ask` itself runs under bf16
autocast when the checkpoint was trained and evaluated so (its `humocon_chat.json`) and the CPU has native bf16. Example, on the demo's checkpoint:

    python benchmarks/bench_ask_latency.py --model humocon_demo --motion ../shared/data/cmu_bvh/09_01.bvh
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers.generation.streamers import BaseStreamer

from humocon_hf.inference import chat_inputs, generation_autocast, load_checkpoint, load_media, user_message


class _TokenClock(BaseStreamer):
    """Arrival time of every generated token (`generate` first puts the prompt, then one token per step)."""

    def __init__(self):
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value):
        if self._prompt_seen:
            self.times.append(time.perf_counter())
        self._prompt_seen = True

    def end(self):
        pass


def ask_once(model, processor, motion_path: str, question: str, system_prompt: str | None, max_new_tokens: int,
             bf16: bool) -> dict:
    """Seconds from the question to the first token (file read, template, processor, prefill), and decode tokens/s."""
    start = time.perf_counter()
    motion, _ = load_media(processor, motion_path, None)
    read = time.perf_counter()
    conversation = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        user_message(question, motion=motion)]
    inputs = chat_inputs(model, processor, conversation)
    prepared = time.perf_counter()
    clock = _TokenClock()
    with torch.no_grad(), generation_autocast(model, bf16):
        model.generate(**inputs, streamer=clock, do_sample=False, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                       pad_token_id=processor.tokenizer.pad_token_id)
    first, last = clock.times[0], clock.times[-1]
    return {"read_s": read - start, "prepare_s": prepared - read, "first_token_s": first - start,
            "decode_tok_s": (len(clock.times) - 1) / (last - first) if len(clock.times) > 1 else float("nan"),
            "prompt_tokens": int(inputs["input_ids"].shape[1])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a HuMoCon checkpoint folder (e.g. the demo's)")
    parser.add_argument("--motion", required=True, help="a motion file (.bvh / .npy)")
    parser.add_argument("--question", default="What is the person doing?")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    model, processor, defaults = load_checkpoint(args.model, device="cpu")
    print(f"model loaded in {time.perf_counter() - start:.2f} s ({sum(p.numel() for p in model.parameters()) / 1e6:.0f}M "
          f"parameters, {torch.get_num_threads()} threads)")
    system_prompt = defaults.get("system_prompt")
    runs = {"float32": [], "bf16 autocast": []}
    for name, bf16 in (("float32", False), ("bf16 autocast", True)):  # warm-up: first calls pay one-off costs
        ask_once(model, processor, args.motion, args.question, system_prompt, 2, bf16)
    for _ in range(args.repeats):
        for name, bf16 in (("float32", False), ("bf16 autocast", True)):
            runs[name].append(ask_once(model, processor, args.motion, args.question, system_prompt,
                                       args.max_new_tokens, bf16))
    print(f"prompt: {runs['float32'][0]['prompt_tokens']} tokens; medians over {args.repeats} alternating repeats")
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    for name, m in medians.items():
        print(f"{name:>14}: read motion {m['read_s'] * 1e3:6.0f} ms | template + processor {m['prepare_s'] * 1e3:5.0f} ms"
              f" | question -> first token {m['first_token_s']:.2f} s | decode {m['decode_tok_s']:.1f} tokens/s")
    f32, b16 = medians["float32"], medians["bf16 autocast"]
    print(f"ratio float32 / bf16: first token {f32['first_token_s'] / b16['first_token_s']:.2f}x, decode "
          f"{b16['decode_tok_s'] / f32['decode_tok_s']:.2f}x tokens/s")


if __name__ == "__main__":
    main()
