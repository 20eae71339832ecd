"""The `humocon` command line.

    humocon demo                       the whole pipeline offline (benchmark, 3 stages, evaluation, export)
    humocon ask --model DIR --motion walk.bvh "What is the person doing?"
    humocon pretrain | translate | tune | evaluate --recipe small|paper|FILE --output-dir DIR
    humocon push --model DIR --repo-id org/name
    humocon inspect walk.bvh           how a motion file maps onto SMPL-22 (rig, units, axis, fps) + a preview

Stage commands run the pipeline up to that stage, reusing stages already finished in the output folder, so
`humocon pretrain ...` then `humocon translate ...` with the same `--output-dir` continue where the first stopped.
Several GPUs / processes: `accelerate launch -m humocon_hf.cli tune --recipe paper --output-dir runs/paper`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from humocon_hf.inference import (
    MOTION_EXTENSIONS,
    VIDEO_EXTENSIONS,
    check_media,
    concept_lines,
    load_checkpoint,
    load_media,
    stream_answer,
    system_messages,
    user_message,
)
from humocon_hf.inference import UserInputError as CLIError  # a user error: one line, no traceback

# ------------------------------------------------------------------------------------------------ commands


def _demo_options(args):
    """The pipeline options of a recipe-driven command (`demo`, the stage commands, `ablate`)."""
    from humocon_hf.pipeline.stages import PipelineOptions
    from humocon_hf.recipes import overrides_from_strings

    return PipelineOptions(
        output_dir=args.output_dir,
        recipe=args.recipe,
        steps_scale=args.steps_scale,
        seed=args.seed,
        overrides=overrides_from_strings(args.override),
        fresh=args.fresh,
        use_cmu=not args.no_cmu,
        max_eval_samples=getattr(args, "max_eval_samples", None),
        command=_command_line(),
        baseline_alongside=not args.sequential_baseline,
    )


def cmd_demo(args) -> int:
    from humocon_hf.auto import register_auto_classes
    from humocon_hf.pipeline.stages import HuMoConPipeline

    register_auto_classes()
    if args.seeds:
        from humocon_hf.demo import run_demo_seeds

        if args.seed is not None:
            raise CLIError("give either --seed or --seeds, not both")
        try:
            run_demo_seeds(_demo_options(args), args.seeds)
        except ValueError as err:
            raise CLIError(str(err)) from err
        return 0
    HuMoConPipeline(_demo_options(args)).run()
    return 0


def cmd_stage(args) -> int:
    from humocon_hf.auto import register_auto_classes
    from humocon_hf.pipeline.stages import HuMoConPipeline

    register_auto_classes()
    pipeline = HuMoConPipeline(_demo_options(args))
    if args.command == "evaluate" and args.model:
        from humocon_hf.pipeline.evaluation import evaluate_checkpoint

        evaluate_checkpoint(pipeline, args.model)
        return 0
    pipeline.run(until=args.command)
    return 0


def cmd_ablate(args) -> int:
    from humocon_hf.auto import register_auto_classes
    from humocon_hf.evaluation import ABLATION_VARIANTS
    from humocon_hf.pipeline.ablation import RECIPE_VARIANTS, run_ablation_study

    register_auto_classes()
    known = {**ABLATION_VARIANTS, **RECIPE_VARIANTS}
    variants = known
    if args.variants:
        unknown = [name for name in args.variants if name not in known]
        if unknown:
            raise CLIError(f"--variants: unknown {unknown}; choose from {list(known)}")
        variants = {name: known[name] for name in args.variants}
    if args.seeds and args.seed is not None:
        raise CLIError("give either --seed or --seeds, not both")
    try:
        run_ablation_study(_demo_options(args), variants, seeds=args.seeds)
    except ValueError as err:
        raise CLIError(str(err)) from err
    return 0


def cmd_ask(args) -> int:
    if not args.interactive and not args.question and not args.concepts:
        raise CLIError('give a question (humocon ask --model DIR --motion FILE "What is the person doing?"), '
                       "--interactive or --concepts")
    if args.concepts and args.motion is None:
        raise CLIError("--concepts shows the concepts of a motion: give --motion FILE")
    given = [o.strip() for o in args.options.split(",") if o.strip()] if args.options is not None else None
    if args.options is not None and not given:
        raise CLIError(f"--options {args.options!r}: expected comma-separated answers, e.g. --options left,right")
    check_media(args.motion, args.video)
    model, processor, defaults = load_checkpoint(args.model, args.device, args.dtype, args.trust_remote_code)
    motion, video = load_media(processor, args.motion, args.video, args.motion_fps, args.skeleton)
    if args.concepts:
        print("\n".join(concept_lines(model, processor, motion)))
    system_prompt = args.system_prompt if args.system_prompt is not None else defaults.get("system_prompt")
    max_new_tokens = args.max_new_tokens or defaults.get("max_new_tokens") or 32
    conversation = system_messages(system_prompt)

    def turn(question: str, first: bool) -> None:
        conversation.append(user_message(question, motion if first else None, video if first else None))
        options = None if args.free_answer else given if first and given else "auto"
        pieces = []
        for piece in stream_answer(model, processor, conversation, max_new_tokens, bf16=bool(defaults.get("bf16")),
                                   options=options):
            pieces.append(piece)
            print(piece, end="", flush=True)
        print(flush=True)
        conversation.append({"role": "assistant", "content": "".join(pieces).strip()})

    first = True
    if args.question:
        turn(args.question, first)
        first = False
    if args.interactive:
        print("Interactive mode: ask follow-up questions; an empty line or Ctrl-D quits.", file=sys.stderr)
        while True:
            try:
                question = input("> ").strip()
            except EOFError:
                break
            if not question:
                break
            turn(question, first)
            first = False
    return 0


def cmd_inspect(args) -> int:
    """Load one motion file as the processor would and show how: the joint mapping, units, axes, rates."""
    from humocon_hf.processing.motion_io import estimate_stature, load_motion
    from humocon_hf.processing.plausibility import check_plausibility
    from humocon_hf.processing.smpl22 import SMPL22_JOINT_NAMES

    path = Path(args.file)
    if not path.is_file():
        raise CLIError(f"{path}: no such file" if not path.exists() else f"{path}: is a folder, expected a motion file")
    kwargs = {}
    if args.source_fps is not None:
        kwargs["source_fps"] = args.source_fps
    is_bvh = path.suffix.lower() in (".bvh", ".amc")  # rig-based formats: mapped onto SMPL-22 the same way
    if args.skeleton is not None:
        if path.suffix.lower() != ".amc":
            raise CLIError(f"--skeleton goes with an .amc motion file, not {path.name}")
        kwargs["skeleton"] = args.skeleton
    if is_bvh:
        if args.rig:
            kwargs["rig"] = args.rig
        if args.joint_map:
            try:
                kwargs["joint_map"] = json.loads(args.joint_map)
            except json.JSONDecodeError as err:
                raise CLIError(f"--joint-map is not valid JSON ({err}); e.g. '{{\"neck\": \"Neck1\"}}'") from None
    elif args.rig or args.joint_map:
        raise CLIError("--rig and --joint-map apply to BVH and ASF/AMC files only")
    try:
        clip = load_motion(str(path), fps=args.fps, **kwargs)
    except (ValueError, FileNotFoundError, ImportError) as err:
        raise CLIError(str(err)) from None
    info = clip.info
    report = {
        "file": str(path), "frames": clip.num_frames, "fps": clip.fps, "source_fps": clip.source_fps,
        "duration_s": round(clip.duration, 3), "stature_m": round(float(estimate_stature(clip.joints)), 3),
        **{k: v for k, v in info.items()},
    }
    warnings = check_plausibility(clip)
    report["plausibility"] = [w.to_dict() for w in warnings]
    if args.preview != "none":
        from humocon_hf.processing.rendering import save_preview

        preview = args.preview or f"{path.stem}.preview.gif"
        report["preview"] = save_preview(clip, preview)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"file:      {path}")
    if is_bvh:
        how = {"auto": "automatic (topology + joint names)", "auto+joint_map": "automatic, with your joint_map",
               "joint_map": "your joint_map"}.get(info["rig"], f"rig table {info['rig']!r}")
        print(f"mapping:   {how}")
        if info.get("skeleton"):
            print(f"skeleton:  {info['skeleton']}")
        header = info.get("header_fps")
        print(f"frames:    {clip.num_frames} at {clip.fps:g} fps ({clip.duration:.2f} s); file rate {clip.source_fps:g} fps"
              + (f" (header says {header:g})" if header and abs(header - clip.source_fps) > 1e-6 else ""))
        print(f"units:     {info['unit']} ({info['scale']:g} m per file unit); up axis {info['up_axis']}; "
              f"facing {info['facing_deg']:.0f} deg in frame 0{' (turned to +Z)' if info['canonical_facing'] else ''}")
        fixes = []
        if info.get("mirrored"):
            fixes.append("mirrored coordinate system: X mirrored")
        fixes += [f"{pair} labelled the wrong way round: swapped" for pair in info.get("swapped_sides", [])]
        if info.get("dropped_frames"):
            fixes.append(f"{info['dropped_frames']} leading T-pose frame(s) dropped")
        print(f"fixes:     {'; '.join(fixes) if fixes else 'none'}")
    else:
        print(f"frames:    {clip.num_frames} at {clip.fps:g} fps ({clip.duration:.2f} s); file rate {clip.source_fps:g} fps")
        print(f"format:    {info.get('format', 'SMPL-22 joints')}")
    print(f"stature:   {report['stature_m']:.2f} m (from bone lengths)")
    # After loading and fixing: what the model will see still has to be a body a person can have.
    checked = "thigh spread, crossed limbs, feet below the floor, bone lengths"
    print(f"pose:      {len(warnings)} warning(s) of the plausibility checks ({checked})" if warnings
          else f"pose:      plausible (checked: {checked})")
    for warning in warnings:
        print(f"warning:   {warning.message}")
    mapping = info.get("joint_mapping")
    if mapping:
        print("SMPL-22 joint    <- file joint")
        derived = {"pelvis": "derived: between the hips, towards the neck",
                   **{f"spine{k}": f"derived: along pelvis -> neck through {mapping.get('spine', [])}" for k in (1, 2, 3)}}
        for name in SMPL22_JOINT_NAMES:
            print(f"  {name:<15}{mapping.get(name, derived.get(name, '-'))}")
    for joint, how in (info.get("interpolated") or {}).items():
        print(f"interpolated: {joint}: {how}")
    for note in info.get("notes") or []:
        print(f"note:      {note}")
    if "preview" in report:
        print(f"preview:   {report['preview']} (blue: the person's left side, red: the right, yellow: the spine)")
    return 0


def cmd_push(args) -> int:
    from humocon_hf.finetune import FINETUNE_INFO, hub_id_placeholder
    from humocon_hf.hub import push_to_hub
    from humocon_hf.inference import CHAT_DEFAULTS
    from humocon_hf.model_card import CARD_MEDIA, card_from_output_dir, render_model_card

    model, processor, _ = load_checkpoint(args.model, "cpu", "auto")
    folder = Path(args.model)
    if args.model_card:
        card = Path(args.model_card)
        if not card.is_file():
            raise CLIError(f"--model-card {card}: file not found")
        card_text = card.read_text(encoding="utf-8")
    elif (folder / FINETUNE_INFO).is_file() and (folder / "README.md").is_file():
        # A `humocon finetune` folder: its own card (base, data, before / after), the repo id put in its usage.
        name = json.loads((folder / FINETUNE_INFO).read_text(encoding="utf-8")).get("name")
        card_text = (folder / "README.md").read_text(encoding="utf-8")
        if name:
            card_text = card_text.replace(hub_id_placeholder(name), args.repo_id)
    elif (folder / "results.json").is_file():
        card_text = card_from_output_dir(folder, repo_id=args.repo_id)
    else:
        print(f"note: {folder}/results.json not found; the card will say that no evaluation was recorded",
              file=sys.stderr)
        card_text = render_model_card(None, model_name=args.repo_id.split("/")[-1], repo_id=args.repo_id, model=model)
    # The images the card shows (the demo's preview and concept timeline) go up beside it.
    media = [folder / name for name in CARD_MEDIA.values() if (folder / name).is_file() and f"]({name})" in card_text]
    # And the chat settings it was tuned and evaluated with (system prompt, answer length, precision), so that
    # `humocon ask` on the Hub id answers as on the folder.
    chat = [folder / CHAT_DEFAULTS] if (folder / CHAT_DEFAULTS).is_file() else []
    info = push_to_hub(model, args.repo_id, processor=processor, model_card=card_text, private=args.private,
                       token=args.token, remote_code=not args.no_remote_code, create_pr=args.create_pr,
                       extra_files=media + chat)
    print(f"pushed to {args.repo_id}: {getattr(info, 'commit_url', info)}")
    return 0


def cmd_finetune(args) -> int:
    from humocon_hf.auto import register_auto_classes
    from humocon_hf.finetune import finetune
    from humocon_hf.recipes import overrides_from_strings

    register_auto_classes()
    for flag, path in (("--data", args.data), ("--eval-data", args.eval_data)):
        if path is not None and not Path(path).exists() and Path(path).suffix.lower() in (".json", ".jsonl"):
            raise CLIError(f"{flag} {path}: file not found")
    info = finetune(args.model, args.data, args.output_dir, eval_data=args.eval_data, epochs=args.epochs,
                    max_steps=args.max_steps, replay=args.replay, old_questions=args.old_questions,
                    license=args.license, recipe=args.recipe, overrides=overrides_from_strings(args.override),
                    steps_scale=args.steps_scale, trust_remote_code=args.trust_remote_code, command=_command_line())
    print(f"fine-tuned {args.model} on {args.data} ({info['train_rows']} examples"
          + (f" + {info['replay_rows']} replayed" if info.get("replay_rows") else "")
          + f", {info['steps']} steps) -> {info['output_dir']}")
    pct = lambda r: f"{100 * r['accuracy']:.1f}%" if r else "-"  # noqa: E731
    if info.get("eval_after"):
        print(f"held-out accuracy on {args.eval_data} ({info['eval_after']['questions']} questions): "
              f"{pct(info.get('eval_before'))} before -> {pct(info['eval_after'])} after")
    if info.get("procedural_after"):
        print(f"what it knew, held-out procedural questions ({info['procedural_after']['questions']}): "
              f"{pct(info.get('procedural_before'))} before -> {pct(info['procedural_after'])} after")
    return 0


def cmd_push_space(args) -> int:
    from humocon_hf.hub import push_space

    try:
        info = push_space(args.repo_id, args.model, private=args.private or None, token=args.token)
    except (ValueError, FileNotFoundError) as err:
        raise CLIError(str(err)) from err
    print(f"Space {args.repo_id}: {info.commit_url}")
    return 0


def cmd_push_dataset(args) -> int:
    from humocon_hf.hub import export_benchmark, push_benchmark
    from humocon_hf.recipes import overrides_from_strings

    if args.repo_id is None and args.local_dir is None:
        raise CLIError("give --repo-id to publish the benchmark, or --local-dir to only write it")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.local_dir) if args.local_dir else Path(tmp)
        counts = export_benchmark(folder, recipe=args.recipe, seed=args.seed,
                                  overrides=overrides_from_strings(args.override))
        splits = ", ".join(f"{s}: {c['motions']} motions / {c['questions']} questions"
                           for s, c in counts["splits"].items())
        print(f"benchmark (seed {counts['seed']}): {splits} -> {folder}")
        if args.repo_id:
            info = push_benchmark(args.repo_id, folder, private=args.private, token=args.token)
            print(f"pushed to datasets/{args.repo_id}: {getattr(info, 'commit_url', None) or getattr(info, 'oid', info)}")
    return 0


def _command_line() -> str:
    argv = sys.argv[1:]
    prog = "humocon" if not sys.argv[0].endswith(".py") else "python -m humocon_hf.cli"
    return " ".join([prog, *(_quote(a) for a in argv)])


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


# ------------------------------------------------------------------------------------------------- parser


def _add_recipe_options(p: argparse.ArgumentParser, default_output: str) -> None:
    p.add_argument("--recipe", default="small",
                   help="Recipe: 'small' (CPU demo, default), 'release' (the small recipe with stage 3 twice as long: "
                        "the checkpoint to publish), 'paper' (Llama-3.1-8B + SigLIP, paper hyper-parameters, "
                        "for GPUs) or the path of a YAML/JSON recipe file with sections model, data, pretrain, "
                        "translate, tune, evaluate (see humocon_hf/recipes/*.yaml).")
    p.add_argument("--output-dir", default=default_output,
                   help=f"Folder for all outputs (default: {default_output}). Stages finished there before are "
                        "reused; an interrupted training stage resumes from its last checkpoint.")
    p.add_argument("--steps-scale", type=float, default=1.0,
                   help="Multiply every training step budget of the recipe (e.g. 0.1 for a quick try, 2 to train "
                        "twice as long). Default 1.")
    p.add_argument("--seed", type=int, default=None,
                   help="Seed of the benchmark generator and of every training stage (default: the recipe's).")
    p.add_argument("--override", action="append", metavar="SECTION.KEY=VALUE", default=[],
                   help="Change one recipe value, e.g. --override tune.learning_rate=5e-4 --override "
                        "data.num_train_motions=800 (repeatable; values are read as YAML).")
    p.add_argument("--fresh", action="store_true",
                   help="Ignore finished stages in --output-dir and redo them.")
    p.add_argument("--no-cmu", action="store_true",
                   help="Do not use the real mocap in ../shared/data (CMU, Bandai Namco) even when it is there.")
    p.add_argument("--sequential-baseline", action="store_true",
                   help="Train the text-only baseline after stage 3 in this process. By default a CPU run with two or "
                        "more threads trains it in a second process alongside stage 3, one thread each (1.26-1.5x "
                        "the samples per second on 2 cores: benchmarks/bench_stage3_step.py).")


def _add_override_option(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument("--override", action="append", metavar="SECTION.KEY=VALUE", default=[],
                   help=f"Change one recipe value, e.g. {example} (repeatable; values are read as YAML).")


def _finetune_defaults() -> dict:
    """`humocon_hf.finetune.finetune`'s keyword defaults (the module imports nothing heavy at the top)."""
    import inspect

    from humocon_hf.finetune import finetune

    return {name: p.default for name, p in inspect.signature(finetune).parameters.items()
            if p.default is not inspect.Parameter.empty}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="humocon",
        description="HuMoCon: an LLM that answers questions about human motion (BVH / HumanML3D / AMASS) and video.",
        epilog="Run `humocon <command> --help` for the options of a command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true",
                        help="Show the full Python traceback of an error instead of one line.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="Run the whole pipeline offline and write one output folder.",
        description="Build the built-in motion-QA benchmark (plus the real CMU mocap when ../shared/data is present), "
                    "train the concept encoders (stage 1), the projectors (stage 2) and LoRA adapters (stage 3) on "
                    "SmolLM2-135M-Instruct, evaluate on held-out questions against what the question alone gives, and write a "
                    "checkpoint, model card, concept-timeline plot, preview GIF and results.json. About 10 minutes on "
                    "2 CPU cores with the default small recipe.",
    )
    _add_recipe_options(demo, "humocon_demo")
    demo.add_argument("--max-eval-samples", type=int, default=None,
                      help="Evaluate on at most this many held-out questions (default: all).")
    demo.add_argument("--seeds", type=int, nargs="+", default=None,
                      help="Run the demo once per seed (benchmark draw and training) in <output-dir>/seed<k> and report "
                           "the table over seeds: mean, std, 95%% CI, paired test against the baseline.")
    demo.set_defaults(func=cmd_demo)

    stage_help = {
        "pretrain": "Stage 1, concept discovery: train the motion (and video) concept encoders.",
        "translate": "Stage 2, modality translation: train the projectors on captions (encoders and LLM frozen).",
        "tune": "Stage 3, instruction tuning: LoRA on the LLM with question/answer pairs.",
        "evaluate": "Evaluate on the held-out split against the baseline (the question alone) and print the accuracy table.",
    }
    for name, text in stage_help.items():
        p = sub.add_parser(
            name, help=text,
            description=text + " Earlier stages missing in --output-dir are run first; finished ones are reused. "
                               "Under `accelerate launch -m humocon_hf.cli " + name + " ...` training uses every process.",
        )
        _add_recipe_options(p, "humocon_run")
        if name == "evaluate":
            p.add_argument("--model", default=None,
                           help="Evaluate this checkpoint (folder or Hub id) on the recipe's benchmark instead of the "
                                "model trained in --output-dir.")
            p.add_argument("--max-eval-samples", type=int, default=None,
                           help="Evaluate on at most this many held-out questions (default: all).")
        p.set_defaults(func=cmd_stage)

    ablate = sub.add_parser(
        "ablate",
        help="Paper Table 3: train the stage-1 ablation variants on the same data and seed and print their accuracy.",
        description="Train the full model, one variant per removed stage-1 objective (masked reconstruction, "
                    "discriminative, velocity reconstruction, video-motion alignment) and one without concept "
                    "discovery (the encoder randomly initialised and frozen) through stages 1-3 with the same recipe, "
                    "benchmark and seed, plus the baseline; evaluate each on the held-out split; print the "
                    "table and write "
                    "ablation.json / ablation_table.md in --output-dir. Each variant has its own sub-folder, so "
                    "a re-run reuses finished variants. With the small recipe each variant takes about as long "
                    "as the demo's training stages.",
    )
    _add_recipe_options(ablate, "humocon_ablation")
    ablate.add_argument("--variants", nargs="+", default=None, metavar="NAME",
                        help="Only these variants (default: all of 'full', 'w/o masked reconstruction', "
                             "'w/o discriminative', 'w/o velocity reconstruction', 'w/o alignment', "
                             "'no concept discovery').")
    ablate.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="Train every variant once per seed (<output-dir>/seed<k>/<variant>) and report mean ± std "
                             "over seeds with 95%% CIs and each variant's paired difference to the full model.")
    ablate.add_argument("--max-eval-samples", type=int, default=None,
                        help="Evaluate on at most this many held-out questions (default: all).")
    ablate.set_defaults(func=cmd_ablate)

    ask = sub.add_parser(
        "ask",
        help="Ask a checkpoint about a motion and/or video; the answer is streamed.",
        description="Load a HuMoCon checkpoint with AutoModel / AutoProcessor and answer a question about a motion "
                    "file (BVH, HumanML3D .npy joints or 263-d features, AMASS .npz) and/or a video file.",
    )
    ask.add_argument("question", nargs="?", default=None, help="The question, e.g. \"What is the person doing?\"")
    ask.add_argument("--model", required=True, help="Checkpoint folder (e.g. ./humocon_demo) or Hub id.")
    ask.add_argument("--motion", default=None, help=f"Motion file ({', '.join(MOTION_EXTENSIONS)}).")
    ask.add_argument("--video", default=None, help=f"Video file ({', '.join(VIDEO_EXTENSIONS)}).")
    ask.add_argument("--skeleton", default=None,
                     help="The .asf skeleton of an .amc motion (default: the .asf beside it named like it, or the only one).")
    ask.add_argument("--motion-fps", type=float, default=None,
                     help="True frame rate of the motion file when its header is wrong (e.g. 120 for some CMU BVH).")
    ask.add_argument("--interactive", action="store_true",
                     help="Multi-turn chat about the same motion/video: follow-up questions from stdin until an "
                          "empty line or Ctrl-D.")
    ask.add_argument("--max-new-tokens", type=int, default=None,
                     help="Longest answer in tokens (default: the checkpoint's setting, else 32).")
    options = ask.add_mutually_exclusive_group()
    options.add_argument("--options", default=None,
                         help="Comma-separated answers the first question's answer must be one of (default: those "
                              "the question lists, as in '..., left or right?').")
    options.add_argument("--free-answer", action="store_true",
                         help="Do not keep answers to the options a question lists.")
    ask.add_argument("--system-prompt", default=None,
                     help="System message (default: the one the checkpoint was tuned with, if recorded).")
    ask.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda when available).")
    ask.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                     help="Weights dtype (default: as saved).")
    ask.add_argument("--trust-remote-code", action="store_true",
                     help="Allow the checkpoint's own code (needed only where humocon-hf is not installed).")
    ask.add_argument("--concepts", action="store_true",
                     help="Also print the motion's concept timeline with what each concept means (e.g. 'left arm "
                          "raising'), as measured on the training motions; works without a question.")
    ask.set_defaults(func=cmd_ask)

    inspect = sub.add_parser(
        "inspect",
        help="Show how a motion file maps onto SMPL-22 (BVH rig mapping, units, up axis, rates) and render a preview.",
        description="Load a motion file (any humanoid BVH, ASF/AMC, HumanML3D .npy, AMASS .npz) as the processor does and print "
                    "the joint mapping chosen, the units, the up axis, the frame rates and what was fixed; write a "
                    "preview GIF to check the result at a glance.",
    )
    inspect.add_argument("file", help="The motion file.")
    inspect.add_argument("--skeleton", default=None,
                         help="The .asf skeleton of an .amc motion (default: the .asf beside it named like it, or the only one).")
    inspect.add_argument("--fps", type=float, default=20.0, help="Output frame rate (default 20, the model's).")
    inspect.add_argument("--source-fps", type=float, default=None, help="The file's true rate when its header is wrong.")
    inspect.add_argument("--rig", default=None,
                         help="BVH: force a rig table (cmu_daz, cmu_amc2bvh, iclone_cc, mixamo) or 'auto'.")
    inspect.add_argument("--joint-map", default=None,
                         help='BVH: JSON {"smpl_joint": "bvh joint name"} overriding the automatic mapping.')
    inspect.add_argument("--preview", default=None,
                         help="Preview file (.gif or .mp4; default <file stem>.preview.gif here); 'none' to skip.")
    inspect.add_argument("--json", action="store_true", help="Print the report as JSON.")
    inspect.set_defaults(func=cmd_inspect)

    finetune = sub.add_parser(
        "finetune",
        help="Fine-tune a HuMoCon checkpoint (folder or Hub id) on your own QA file: LoRA stage 3 only.",
        description="Load a published HuMoCon checkpoint with AutoModel / AutoProcessor, run LoRA instruction tuning "
                    "(the recipe's `tune` section) on a custom QA file (JSON lines with motion (or motion_path) and/or "
                    "video (or video_path), relative to the file's folder, and question + answer or conversations) "
                    "for a few epochs, with a share of the checkpoint's own procedural questions replayed; measure "
                    "the accuracy before and after on --eval-data and on held-out procedural questions, keep the "
                    "best checkpoint on --eval-data, and write a merged checkpoint with its chat settings and a "
                    "model card saying what it was fine-tuned from and on. The plan (rows, batch, epochs, steps) is "
                    "printed first and the time measured on the first steps. An interrupted run resumes from its "
                    "last checkpoint. The same in Python: humocon_hf.finetune.finetune, with the same defaults.",
    )
    # The defaults are `humocon_hf.finetune.finetune`'s own: the command and the Python call train alike.
    defaults = _finetune_defaults()
    finetune.add_argument("--model", required=True, help="Checkpoint folder (e.g. ./humocon_demo) or Hub id.")
    finetune.add_argument("--data", required=True,
                          help="Training QA file (.jsonl / .json) or data set folder / id; relative motion / video "
                               "paths in it are read from the file's folder.")
    finetune.add_argument("--eval-data", default=defaults["eval_data"],
                          help="Held-out QA file: accuracy before and after, and the best checkpoint on it is kept.")
    finetune.add_argument("--output-dir", default="humocon_finetuned", help="Where the fine-tuned checkpoint goes.")
    finetune.add_argument("--epochs", type=float, default=defaults["epochs"],
                          help="Passes over the training rows, at most the recipe's tune.max_steps (default "
                               "%(default)g).")
    finetune.add_argument("--max-steps", type=int, default=defaults["max_steps"],
                          help="Train exactly this many steps instead of --epochs.")
    finetune.add_argument("--replay", type=float, default=defaults["replay"],
                          help="Share of each epoch's rows that are the checkpoint's own procedural training "
                               "questions, new ones each epoch, so that it keeps what it knew (default %(default)g; "
                               "0: none).")
    finetune.add_argument("--old-questions", type=int, default=defaults["old_questions"],
                          help="Held-out procedural questions asked before and after: what it knew (default "
                               "%(default)d; 0: none).")
    finetune.add_argument("--license", default=defaults["license"],
                          help="Licence of the fine-tuned model for its card, e.g. cc-by-nc-4.0 when the data is "
                               "(default: the base checkpoint's).")
    finetune.add_argument("--recipe", default=defaults["recipe"],
                          help="Recipe whose `tune` section sets LoRA and training.")
    finetune.add_argument("--steps-scale", type=float, default=defaults["steps_scale"],
                          help="Multiply the recipe's tune.max_steps (the cap on --epochs).")
    _add_override_option(finetune, "--override tune.learning_rate=5e-4")
    finetune.add_argument("--trust-remote-code", action="store_true", default=defaults["trust_remote_code"],
                          help="Allow the checkpoint's own code (needed only where humocon-hf is not installed).")
    finetune.set_defaults(func=cmd_finetune)

    push_space = sub.add_parser(
        "push-space",
        help="Publish the Gradio demo (app/) as a Hub Space with the checkpoint it serves.",
        description="Upload app/ (the Gradio app, its examples, its Space README and requirements), the humocon_hf "
                    "code it imports and the checkpoint's serving files as humocon_demo/ to a Space, in one commit.",
    )
    push_space.add_argument("--repo-id", required=True, help="Target Space repository, 'org/name'.")
    push_space.add_argument("--model", default="humocon_demo", help="Checkpoint folder the Space serves.")
    push_space.add_argument("--private", action="store_true", help="Create the Space as private.")
    push_space.add_argument("--token", default=None, help="Hub token (default: the stored login).")
    push_space.set_defaults(func=cmd_push_space)

    push_dataset = sub.add_parser(
        "push-dataset",
        help="Publish the built-in motion-QA benchmark as a Hub data set (or write it to --local-dir).",
        description="Generate the recipe's procedural motion-QA benchmark and write it as a Hub data set: configs "
                    "'questions' and 'motions' (joints included), one parquet file per split, and a data set card "
                    "(how it was generated, counts per split and query type, licence); then upload it in one commit "
                    "so that others can load_dataset it and compare models on the same questions.",
    )
    push_dataset.add_argument("--repo-id", default=None, help="Target data set repository, 'org/name'.")
    push_dataset.add_argument("--local-dir", default=None, help="Also (or only) write the data set folder here.")
    push_dataset.add_argument("--recipe", default="small", help="Recipe whose data section sizes the benchmark.")
    push_dataset.add_argument("--seed", type=int, default=None, help="Benchmark seed (default: the recipe's).")
    _add_override_option(push_dataset, "--override data.num_test_motions=200")
    push_dataset.add_argument("--private", action="store_true", help="Create the repository as private.")
    push_dataset.add_argument("--token", default=None, help="Hub token (default: the stored login).")
    push_dataset.set_defaults(func=cmd_push_dataset)

    push = sub.add_parser(
        "push",
        help="Upload a checkpoint, its processor and a model card to the Hugging Face Hub.",
        description="Push model + processor (+ the code, for trust_remote_code users) and a model card filled from "
                    "the folder's results.json (measured numbers only) in one commit. Needs `huggingface-cli login` "
                    "or --token.",
    )
    push.add_argument("--model", required=True, help="Checkpoint folder (e.g. ./humocon_demo).")
    push.add_argument("--repo-id", required=True, help="Target repository, 'org/name'.")
    push.add_argument("--model-card", default=None, help="Use this Markdown file as the README instead.")
    push.add_argument("--private", action="store_true", help="Create the repository as private.")
    push.add_argument("--token", default=None, help="Hub token (default: the stored login).")
    push.add_argument("--create-pr", action="store_true", help="Open a pull request instead of committing to main.")
    push.add_argument("--no-remote-code", action="store_true",
                      help="Do not ship the modeling/processing code (users then need humocon-hf installed).")
    push.set_defaults(func=cmd_push)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe (`humocon inspect ... | head`) shows here, inside the handlers below
        return code
    except BrokenPipeError:
        # The reader stopped reading: exit quietly as standard tools do (128 + SIGPIPE), with stdout pointed at
        # /dev/null so that the interpreter's last flush does not fail again (the Python docs' recipe).
        with contextlib.suppress(OSError, ValueError, AttributeError):  # a replaced sys.stdout without a descriptor
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except _user_errors() as err:  # evaluated only when an exception arrives
        if args.debug:
            raise
        print(f"humocon {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, ImportError) as err:
        # Bad values reaching the pipeline (a recipe value a component refuses, a missing data file, an optional
        # package): one line, the traceback on request.
        if args.debug:
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"humocon {args.command}: error: {type(err).__name__}: {first} (run `humocon --debug {args.command} "
              "...` for the traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nhumocon {args.command}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    finally:
        _close_process_group()


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors printed as one line: ours, a recipe's when recipes were read (importing `humocon_hf.recipes`
    imports transformers, seconds that `--help` or `inspect` do not need), a busy stage folder when a pipeline ran."""
    errors: tuple[type[Exception], ...] = (CLIError,)
    recipes = sys.modules.get("humocon_hf.recipes")
    if recipes is not None:
        errors += (recipes.RecipeError,)
    runner = sys.modules.get("humocon_hf.pipeline.runner")  # a stage folder another run is writing
    if runner is not None:
        errors += (runner.StageBusyError,)
    hub_errors = sys.modules.get("huggingface_hub.errors")  # a model config's `@strict` validation (a recipe value)
    if hub_errors is not None:
        errors += (hub_errors.StrictDataclassError,)
    return errors


def _close_process_group() -> None:
    """Under `accelerate launch`, leave the process group before exiting: a gloo group torn down by interpreter exit
    can abort a rank ("terminate called without an active exception") after a successful run."""
    if "torch" not in sys.modules:  # nothing ran that could have joined a group
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
