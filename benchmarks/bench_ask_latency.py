"""How long `humocon ask` makes a user wait: end to end in fresh processes (`humocon --help`, `humocon ask`), and once
the model is loaded (reading the motion file, the chat template and the processor, the prefill, the first generated
token, and the decoding rate after it, float32 and bf16 autocast).

End to end, each command runs in a fresh interpreter, in rounds that alternate it with references measured in the same
run: a bare `python -c pass`, `import torch`, `import torch, transformers` (the lazy top level only), and the imports any transformers model and processor need (`import
torch, transformers.modeling_utils, transformers.processing_utils`); the ratios to them say how much of the wait is
ours. Then, in this process, the path is the command's own (`humocon_hf.inference`: `load_media`, `user_message`,
`chat_inputs`, greedy `generate` as in `stream_answer`); a streamer records when each token arrives, float32 and bf16
autocast alternately (ratio = float32 time / bf16 time). `humocon ask` itself runs under bf16 autocast when the
checkpoint was trained and evaluated so (its `humocon_chat.json`) and the CPU has native bf16. Example, on the demo's
checkpoint:

    python benchmarks/bench_ask_latency.py --model humocon_demo --motion ../shared/data/cmu_bvh/09_01.bvh

Every end-to-end line also gives CPU seconds (user + system), which a machine shared with training jobs inflates much
less than wall time. `--baseline-python` runs another interpreter's `humocon ask` in the same rounds (before / after a
change); run from outside the checkout, since `python -m` imports the working directory's `humocon_hf` first.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
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


def wall_times(commands: dict[str, list[str]], rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall seconds and median CPU seconds (user + system) of each command in a fresh process, the commands
    alternating round by round so that a change in the machine's load falls on all of them alike. On a machine shared
    with training jobs, wall time mostly measures the wait for a core; CPU time measures the work."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True)
            times[name].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if result.returncode != 0:
                raise SystemExit(f"{name}: exit {result.returncode}\n{result.stderr[-2000:]}")
    return ({name: statistics.median(values) for name, values in times.items()},
            {name: statistics.median(values) for name, values in cpu.items()})


def end_to_end(model: str, motion: str, question: str, rounds: int, baseline_python: str | None = None) -> None:
    python = [sys.executable]
    commands = {
        "python -c pass": [*python, "-c", "pass"],
        "import torch": [*python, "-c", "import torch"],
        "import torch, transformers": [*python, "-c", "import torch, transformers"],
        "import torch + transformers model/processor code": [
            *python, "-c", "import torch, transformers.modeling_utils, transformers.processing_utils"],
        "humocon --help": [*python, "-m", "humocon_hf.cli", "--help"],
        "humocon ask (load + answer)": [*python, "-m", "humocon_hf.cli", "ask", "--model", model, "--motion", motion,
                                        "--device", "cpu", question],
    }
    if baseline_python:  # another checkout's interpreter (e.g. before a change), in the same alternating rounds
        commands["humocon ask, --baseline-python"] = [baseline_python, *commands["humocon ask (load + answer)"][1:]]
    medians, cpu = wall_times(commands, rounds)
    torch_s = medians["import torch"]
    floor_s = medians["import torch + transformers model/processor code"]
    floor_cpu = cpu["import torch + transformers model/processor code"]
    print(f"end to end, fresh processes, medians over {rounds} alternating rounds (wall; CPU = user + system):")
    for name, seconds in medians.items():
        print(f"  {name:<50} {seconds:6.2f} s  ({seconds / torch_s:4.2f}x import torch, "
              f"{seconds / floor_s:4.2f}x torch + transformers, {seconds - floor_s:+5.2f} s beyond it) | "
              f"CPU {cpu[name]:5.2f} s ({cpu[name] - floor_cpu:+5.2f} s beyond the imports')")
    ask = medians["humocon ask (load + answer)"]
    print(f"side by side: humocon ask {ask:.2f} s | import torch + transformers model/processor code {floor_s:.2f} s | "
          f"ours (load + answer + our imports) {ask - floor_s:.2f} s wall, "
          f"{cpu['humocon ask (load + answer)'] - floor_cpu:.2f} s CPU")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a HuMoCon checkpoint folder (e.g. the demo's)")
    parser.add_argument("--motion", required=True, help="a motion file (.bvh / .npy)")
    parser.add_argument("--question", default="What is the person doing?")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5, help="fresh-process rounds of the end-to-end part")
    parser.add_argument("--baseline-python", default=None,
                        help="the interpreter of another checkout (its venv's python): its `humocon ask` runs in the same rounds")
    parser.add_argument("--only", choices=["end-to-end", "loaded"], default=None, help="run only one part")
    args = parser.parse_args(argv)
    if args.only != "loaded":
        end_to_end(args.model, args.motion, args.question, args.rounds, args.baseline_python)
    if args.only == "end-to-end":
        return

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
