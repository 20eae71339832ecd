"""Sharing HuMoCon checkpoints: a remote-code export and `push_to_hub` of model + processor + model card.

A plain `model.save_pretrained(folder)` writes a native checkpoint: clean JSON (no `auto_map`), loadable
wherever humocon-hf is installed (the Auto classes are registered on import). [`save_for_remote_code`]
additionally copies the defining modules (`modeling/` and `processing/` are flat, self-contained folders for
this) and writes an `auto_map`, so `AutoModel.from_pretrained(folder, trust_remote_code=True)` works for users
without the package. Registration for the Auto classes happens only for the duration of the export, so other
saves stay clean.

[`push_to_hub`] exports into a temporary folder and uploads it as one commit through
`transformers.utils.hub.hf_api()`, the same `HfApi` object transformers uses for its own pushes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor

REMOTE_CODE_AUTO_MAP = {
    "AutoConfig": "configuration_humocon.HuMoConConfig",
    "AutoModel": "modeling_humocon.HuMoConForCausalLM",
    "AutoModelForCausalLM": "modeling_humocon.HuMoConForCausalLM",
}
PROCESSOR_AUTO_MAP = {"AutoProcessor": "processing_humocon.MotionVideoProcessor"}

# What the exported code imports, as one pip line (model cards print it): torch + transformers + numpy, jinja2 for
# the chat template, OpenCV for videos. The code imports OpenCV lazily and names this package when a video needs
# it; AMASS / SMPL parameter files also need `smplx` (and the body model files), named the same way.
REMOTE_CODE_PIP = 'pip install torch "transformers>=5.25" numpy jinja2 opencv-python-headless'


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def public_name(name_or_path) -> str | None:
    """`name_or_path` when it is a Hub id (``org/name``, not a folder here), else None: a local path (absolute,
    ``~``, ``./`` or an existing folder) names this machine's files and does not belong in a pushed file."""
    text = "" if name_or_path is None else str(name_or_path).strip()
    if not text or not _HUB_ID.fullmatch(text) or ".." in text or os.path.exists(os.path.expanduser(text)):
        return None
    return text


def _nested_configs(config, seen=None):
    """`config` and every config inside it (text_config, motion_config, video_config.vision_config, ...)."""
    from transformers import PreTrainedConfig

    seen = set() if seen is None else seen
    if id(config) in seen:
        return
    seen.add(id(config))
    yield config
    for value in vars(config).values():
        if isinstance(value, PreTrainedConfig):
            yield from _nested_configs(value, seen)


@contextlib.contextmanager
def _without_local_paths(config):
    """While saving for the Hub: no `_name_or_path` of a sub-config that is a local path (transformers drops the
    top-level one only, and a text_config loaded from a folder would carry that folder into config.json)."""
    saved = []
    for sub in _nested_configs(config):
        value = getattr(sub, "_name_or_path", "")
        if value and public_name(value) is None:
            saved.append((sub, value))
            sub._name_or_path = ""
    try:
        yield
    finally:
        for sub, value in saved:
            sub._name_or_path = value


def _plain_model(model):
    if hasattr(model, "peft_config"):
        raise ValueError(
            "the model still carries LoRA adapters: merge them first (humocon_hf.training.merge_adapter) or push "
            "the adapter with peft's own save_pretrained"
        )
    return model


def save_for_remote_code(
    model: HuMoConForCausalLM,
    save_directory: str | os.PathLike,
    processor: MotionVideoProcessor | None = None,
    **save_kwargs,
) -> list[str]:
    """Save `model` (and `processor`) so the folder loads with `trust_remote_code=True` without humocon-hf.

    `config.json` gets an `auto_map` for AutoConfig, AutoModel, AutoModelForCausalLM (and AutoProcessor when a
    processor is saved alongside); the modeling / processing modules are copied next to the weights. Sub-configs'
    `_name_or_path` that are local paths are left out (a Hub id is kept): the folder is meant to be shared.

    Returns:
        The sorted file names in `save_directory`.
    """
    model = _plain_model(model)
    save_directory = Path(save_directory)
    save_directory.mkdir(parents=True, exist_ok=True)
    config = model.config
    model_class, config_class = type(model), type(config)
    previous = (
        model_class._auto_class,
        config_class._auto_class,
        getattr(config, "auto_map", None),
    )
    auto_map = dict(REMOTE_CODE_AUTO_MAP)
    if processor is not None:
        auto_map.update(PROCESSOR_AUTO_MAP)
    # Pre-seeded: save_pretrained itself adds only the one auto class the model class is registered for.
    config.auto_map = auto_map
    try:
        model_class.register_for_auto_class("AutoModelForCausalLM")
        config_class.register_for_auto_class("AutoConfig")
        with _without_local_paths(config):
            model.save_pretrained(save_directory, **save_kwargs)
        if processor is not None:
            processor.save_pretrained(save_directory, export_remote_code=True)
    finally:
        model_class._auto_class, config_class._auto_class = previous[0], previous[1]
        if previous[2] is None:
            config.__dict__.pop("auto_map", None)
        else:
            config.auto_map = previous[2]
    return sorted(os.listdir(save_directory))


def default_model_card(model: HuMoConForCausalLM, repo_id: str, base_model: str | None = None) -> str:
    """A short model card: what the model is, how to load it, what it was built from."""
    from humocon_hf.model_card import card_metadata

    config = model.config
    text = config.text_config
    base = base_model or public_name(getattr(text, "_name_or_path", "")) or text.model_type
    # No pipeline_tag: the Hub has no motion-to-text task, and this card cannot tell whether the LLM saw videos.
    metadata = card_metadata({"library_name": "transformers", "tags": ["humocon", "motion-understanding", "custom_code"]})
    lines = [
        f"---\n{metadata}---",
        "",
        f"# {repo_id.split('/')[-1]}",
        "",
        "HuMoCon question-answering model: an LLM that answers questions about a human motion sequence, a video,",
        "or both. Frozen concept encoders (a motion transformer and a SigLIP video tower, each with a VQ",
        "codebook of discovered motion concepts) feed one projector per modality into the LLM.",
        "",
        f"- LLM: `{base}` ({text.model_type}, hidden size {text.hidden_size}, {text.num_hidden_layers} layers)",
        (
            f"- Motion tokens: one per {config.motion_token_stride} frames; video tokens: "
            f"{config.video_tokens_per_frame} per key frame"
        ),
        (
            f"- Features fed to the LLM: {'quantised' if config.use_motion_quantized else 'continuous'} (motion), "
            f"{'quantised' if config.use_video_quantized else 'continuous'} (video)"
            + ("; the motion projector also reads each token's pose frames"
               if getattr(config, "motion_projector_reads_poses", False) else "")
        ),
        "",
        "## Usage",
        "",
        "```python",
        "from transformers import AutoModel, AutoProcessor",
        "",
        f'model = AutoModel.from_pretrained("{repo_id}", trust_remote_code=True)',
        f'processor = AutoProcessor.from_pretrained("{repo_id}", trust_remote_code=True)',
        'conversation = [{"role": "user", "content": [',
        '    {"type": "motion", "motion": "walk.bvh"},',
        '    {"type": "text", "text": "\\nWhat is the person doing?"}]}]',
        "inputs = processor.apply_chat_template(conversation, tokenize=True, add_generation_prompt=True, return_dict=True)",
        "answer = model.generate(**inputs, max_new_tokens=32)",
        "print(processor.batch_decode(answer[:, inputs['input_ids'].shape[1]:], skip_special_tokens=True))",
        "```",
        "",
        "The code stored with the checkpoint needs only `" + REMOTE_CODE_PIP + "` (OpenCV only for videos; AMASS /",
        "SMPL parameter files also need `smplx`). With `pip install humocon-hf` the classes are registered natively",
        "and `trust_remote_code` is not needed.",
        "",
    ]
    return "\n".join(lines)


def push_to_hub(
    model: HuMoConForCausalLM,
    repo_id: str,
    processor: MotionVideoProcessor | None = None,
    model_card: str | None = None,
    *,
    model_card_path: str | os.PathLike | None = None,
    private: bool | None = None,
    token: bool | str | None = None,
    commit_message: str = "Upload HuMoCon model, processor and model card",
    revision: str | None = None,
    create_pr: bool = False,
    remote_code: bool = True,
    extra_files: Sequence[str | os.PathLike] = (),
    **save_kwargs,
):
    """Upload model + processor + model card to `repo_id` in one commit.

    Args:
        model: a `HuMoConForCausalLM` (LoRA adapters merged).
        repo_id: `"org/name"`.
        processor: the `MotionVideoProcessor` to ship (recommended: users need it to build inputs).
        model_card: the card's Markdown *text* (never read as a file name, whatever it ends with).
        model_card_path: a Markdown file to upload as the card instead; give one of the two (default:
            [`default_model_card`]).
        remote_code: also ship the code (`trust_remote_code=True` loads without humocon-hf); default True.
        extra_files: files uploaded beside the card under their own names (the preview and concept timeline the
            card shows: `humocon_hf.model_card.card_media`).

    Returns:
        The `CommitInfo` of the upload.
    """
    from huggingface_hub import CommitOperationAdd
    from transformers.utils.hub import hf_api

    model = _plain_model(model)
    if not isinstance(repo_id, str) or not repo_id.strip():
        raise ValueError(
            f"repo_id must be a non-empty 'org/name' string, got {repo_id!r}"
        )
    api = hf_api()
    repo_id = api.create_repo(
        repo_id, private=private, token=token, exist_ok=True
    ).repo_id
    if model_card is not None and model_card_path is not None:
        raise ValueError("give model_card (the text) or model_card_path (a file), not both")
    if model_card is not None and not isinstance(model_card, str):
        raise TypeError(f"model_card is the card's text (str), got {type(model_card).__name__}; pass a file as "
                        "model_card_path=")
    if model_card_path is not None:
        path = Path(model_card_path)
        if not path.is_file():
            raise FileNotFoundError(f"model card file {path} does not exist")
        card_text = path.read_text(encoding="utf-8")
    elif model_card is not None:
        card_text = model_card
    else:
        card_text = default_model_card(model, repo_id)

    with tempfile.TemporaryDirectory(prefix="humocon-push-") as tmp:
        if remote_code:
            save_for_remote_code(model, tmp, processor=processor, **save_kwargs)
        else:
            with _without_local_paths(model.config):
                model.save_pretrained(tmp, **save_kwargs)
            if processor is not None:
                processor.save_pretrained(tmp)
        Path(tmp, "README.md").write_text(card_text, encoding="utf-8")
        for extra in extra_files:
            extra = Path(extra)
            if not extra.is_file():
                raise FileNotFoundError(f"extra file {extra} does not exist")
            if (Path(tmp) / extra.name).exists():
                raise ValueError(f"extra file {extra} would replace the checkpoint's own {extra.name}")
            shutil.copyfile(extra, Path(tmp) / extra.name)
        operations = []
        for root, _, files in os.walk(tmp):
            for name in sorted(files):
                full = Path(root, name)
                operations.append(
                    CommitOperationAdd(
                        path_in_repo=full.relative_to(tmp).as_posix(),
                        path_or_fileobj=str(full),
                    )
                )
        return api.create_commit(
            repo_id=repo_id,
            operations=operations,
            commit_message=commit_message,
            token=token,
            revision=revision,
            create_pr=create_pr,
        )


# ------------------------------------------------------------------------------------------- benchmark on the Hub

BENCHMARK_CONFIGS = ("questions", "motions")
# What `export_benchmark` writes into a folder, listed in this file of the folder (never uploaded): `push_benchmark`
# uploads those files only, and a later export may overwrite them.
BENCHMARK_MANIFEST = ".humocon-benchmark.json"
_BENCHMARK_FILE = re.compile(r"README\.md|(?:" + "|".join(BENCHMARK_CONFIGS) + r")/[A-Za-z0-9_]+-00000-of-00001\.parquet")
_QUESTION_COLUMNS = ("id", "motion_id", "question", "answer", "query_type", "relation_type")
_MOTION_COLUMNS = ("motion_id", "joints", "fps", "num_frames", "segments", "caption")


def export_benchmark(folder: str | os.PathLike, recipe: str = "small", seed: int | None = None,
                     overrides: dict | None = None) -> dict:
    """Write the built-in motion-QA benchmark of `recipe`'s data section as a Hub data set folder: two configs,
    `questions` (id, motion_id, question, answer, query_type, relation_type) and `motions` (motion_id, joints
    `(T, 22, 3)` float32 metres Y-up, fps, num_frames, segments, caption), one parquet file per split, and a data
    set card (how it was generated, counts per split and query type, licence). `datasets.load_dataset(folder or
    repo id, "questions")` reads it. Returns the counts.

    `folder` must be new, empty or written by an earlier `export_benchmark` (its `BENCHMARK_MANIFEST` lists what it
    wrote): a folder of yours is never written into, so a README.md already there is not overwritten. Symbolic links
    are never written through."""
    from collections import Counter

    from humocon_hf.data.procedural import GENERATOR_VERSION, generate_motion_qa
    from humocon_hf.recipes import load_recipe

    data = load_recipe(recipe, overrides).data
    seed = data.seed if seed is None else int(seed)
    n = (data.num_train_motions, data.num_validation_motions, data.num_test_motions)
    common = dict(num_motions=sum(n), seed=seed, questions_per_motion=data.questions_per_motion,
                  splits=tuple(k / sum(n) for k in n), max_frames=data.max_frames,
                  cache_dir=data.cache_dir or None, extra_train_motions=data.extra_train_motions,
                  realism=data.procedural_realism)
    out = Path(folder).expanduser()
    _check_benchmark_folder(out)  # before minutes of generation
    questions = generate_motion_qa(rows="questions", **common)
    motions = generate_motion_qa(rows="motions", include_joints=True, **common)
    _check_benchmark_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict = {"seed": seed, "generator_version": GENERATOR_VERSION, "splits": {}}
    written = []
    for config, dd, columns in (("questions", questions, _QUESTION_COLUMNS), ("motions", motions, _MOTION_COLUMNS)):
        sub = out / config
        if sub.is_symlink() or (sub.exists() and not sub.is_dir()):
            raise ValueError(f"{sub} is a symbolic link or not a folder: export_benchmark writes only real folders")
        sub.mkdir(exist_ok=True)
        for split, ds in dd.items():
            ds = ds.select_columns([c for c in columns if c in ds.column_names])
            name = f"{config}/{split}-00000-of-00001.parquet"
            _write_replacing(out / name, lambda tmp, ds=ds: ds.to_parquet(tmp))
            written.append(name)
            entry = counts["splits"].setdefault(split, {})
            entry[config] = len(ds)
            if config == "questions":
                entry["query_types"] = dict(sorted(Counter(ds["query_type"]).items()))
    card = _benchmark_card(counts, data, recipe)
    _write_replacing(out / "README.md", lambda tmp: Path(tmp).write_text(card, encoding="utf-8"))
    written.append("README.md")
    _write_replacing(out / BENCHMARK_MANIFEST,
                     lambda tmp: Path(tmp).write_text(json.dumps({"files": written}, indent=1), encoding="utf-8"))
    return counts


def _check_benchmark_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / BENCHMARK_MANIFEST).is_file():
        raise ValueError(f"{out} is not empty and was not written by export_benchmark (no {BENCHMARK_MANIFEST}); "
                         "give a new or empty folder: files of yours there (a README.md too) are neither overwritten "
                         "nor uploaded")


def _write_replacing(target: Path, write) -> None:
    """`write(temporary path)` in `target`'s folder, then the temporary file replaces `target` (a symbolic link at
    `target` is replaced, never written through)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def benchmark_files(folder: str | os.PathLike) -> list[str]:
    """The files of a folder that `export_benchmark` wrote (paths relative to it): those its manifest lists, each a
    regular file (not a symbolic link, nor inside one) with a name `export_benchmark` gives. Raises otherwise."""
    folder = Path(folder)
    manifest = folder / BENCHMARK_MANIFEST
    if not manifest.is_file() or manifest.is_symlink():
        raise FileNotFoundError(f"{folder}: not a benchmark folder written by export_benchmark (no {BENCHMARK_MANIFEST}"
                                "); run export_benchmark (`humocon push-dataset --local-dir`) into a new folder first")
    try:
        names = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{manifest}: unreadable benchmark manifest ({err})") from None
    files = []
    for name in names:
        if not isinstance(name, str) or not _BENCHMARK_FILE.fullmatch(name):
            raise ValueError(f"{manifest} lists {name!r}, not a file export_benchmark writes")
        parts = name.split("/")
        for k in range(1, len(parts) + 1):
            st = os.lstat(folder.joinpath(*parts[:k]))
            if stat.S_ISLNK(st.st_mode):
                raise ValueError(f"{folder / name}: a symbolic link; only files export_benchmark wrote are uploaded")
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{folder / name} is not a regular file")
        files.append(name)
    if "README.md" not in files or not any(n.endswith(".parquet") for n in files):
        raise FileNotFoundError(f"{folder}: not a benchmark folder (README.md + <config>/*.parquet); run "
                                "export_benchmark first")
    return files


def _benchmark_card(counts: dict, data, recipe: str) -> str:
    from humocon_hf.model_card import card_metadata
    from humocon_hf.tables import render_table

    realism = (f" The training motions are performed less regularly than the held-out ones (`data.procedural_realism` "
               f"{data.procedural_realism:g}: uneven timing, larger and one-sided movements, weight shifts, capture "
               f"noise, clips cut mid-action); validation and test motions are not varied."
               if data.procedural_realism else "")

    metadata = card_metadata({
        "license": "apache-2.0", "task_categories": ["question-answering"],
        "tags": ["human-motion", "motion-question-answering", "synthetic", "humocon"],
        "configs": [{"config_name": config,
                     "data_files": [{"split": s, "path": f"{config}/{s}-*.parquet"} for s in counts["splits"]]}
                    for config in BENCHMARK_CONFIGS],
    }, dataset=True)
    table = render_table(["split", "motions", "questions", "questions per query type"],
                         [[s, c["motions"], c["questions"], ", ".join(f"{k} {v}" for k, v in c["query_types"].items())]
                          for s, c in counts["splits"].items()])
    return f"""---
{metadata}---

# HuMoCon procedural motion-QA benchmark

Synthetic human motions with BABEL-QA style questions, generated by the humocon-hf package
(`humocon_hf.data.generate_motion_qa`, generator version
{counts['generator_version']}, seed {counts['seed']}, the `{recipe}` recipe's data section: {data.questions_per_motion}
questions per motion, at most {data.max_frames} frames at 20 fps). Each motion chains 2-4 actions of a parametric
body (walk, run, jump, wave, kick, squat, sit...), with labels known by construction, so every question has exactly
one correct answer. Questions ask for the action, the direction or the body part of a segment, optionally before /
after another segment, in BABEL-QA's vocabulary. Train, validation and test motions are disjoint.{realism}

{table}

```python
from datasets import load_dataset

questions = load_dataset("<this repo>", "questions", split="test")   # id, motion_id, question, answer, query_type...
motions = load_dataset("<this repo>", "motions", split="test")       # motion_id, joints (T, 22, 3), caption...
```

`joints` are SMPL-22 joint positions (HumanML3D order, metres, Y up, 20 fps). Score answers with
`humocon_hf/metrics/babel_qa_accuracy` (exact match after BABEL-QA answer normalisation) to compare with the
numbers humocon-hf reports. Regenerate it offline with `humocon push-dataset --local-dir DIR --seed {counts['seed']}`.

Licence: Apache-2.0 (generated data, no third-party motion).
"""


def push_benchmark(repo_id: str, folder: str | os.PathLike, *, private: bool | None = None,
                   token: bool | str | None = None, commit_message: str = "Upload the HuMoCon motion-QA benchmark"):
    """Upload a folder written by `export_benchmark` as the data set repository `repo_id`, in one commit: only the
    files it wrote (`benchmark_files`), never anything else in the folder, never through a symbolic link."""
    from huggingface_hub import CommitOperationAdd
    from transformers.utils.hub import hf_api

    folder = Path(folder)
    files = benchmark_files(folder)
    api = hf_api()
    repo_id = api.create_repo(repo_id, private=private, token=token, exist_ok=True, repo_type="dataset").repo_id
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name)) for name in files]
    return api.create_commit(repo_id, operations=operations, commit_message=commit_message, token=token,
                             repo_type="dataset")



# ------------------------------------------------------------------------------------------------ the Space

# The folder of the served checkpoint inside the Space: app.py's default model (./humocon_demo beside it).
SPACE_MODEL_DIR = "humocon_demo"
# The packages the Space's app imports, laid out as installed (setup.cfg's `packages`; modeling, processing and
# training live in top-level folders of the source tree): humocon-hf is not on the package index, so the Space
# carries its code beside app.py, and app/requirements.txt lists what that code needs.
SPACE_PACKAGES = ("humocon_hf", "humocon_hf.data", "humocon_hf.metrics", "humocon_hf.modeling", "humocon_hf.pipeline",
                  "humocon_hf.processing", "humocon_hf.training")
_PACKAGE_SUFFIXES = (".py", ".json", ".jinja", ".yaml", ".md")  # the code and setup.cfg's package data
# What a checkpoint needs to serve (weights, configs, tokenizer, chat defaults): not its run record (results.json,
# with this machine's paths), training stages, previews, model card or copies of the code.
_SPACE_CHECKPOINT_FILE = re.compile(
    r"config\.json|generation_config\.json|humocon_chat\.json|(?:video_)?(?:pre)?processor_config\.json"
    r"|tokenizer(?:_config)?\.json|special_tokens_map\.json|added_tokens\.json|vocab\.json|merges\.txt"
    r"|tokenizer\.model|chat_template\.(?:jinja|json)|model(?:-\d{5}-of-\d{5})?\.safetensors"
    r"|model\.safetensors\.index\.json"
)
_SPACE_APP_FILES = ("app.py", "README.md", "requirements.txt")


def _regular_file(path: Path) -> bool:
    """A regular file that is not a symbolic link (a link could point anywhere on this machine)."""
    st = os.lstat(path)
    return stat.S_ISREG(st.st_mode)


def space_files(model_dir: str | os.PathLike, app_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """What [`push_space`] uploads, as `{path in the Space: local file}`: the app folder's `app.py`, `README.md`
    (the Space's front matter), `requirements.txt` and `examples/` (`*.bvh` and their README), the humocon_hf
    package's code (`SPACE_PACKAGES`), and the checkpoint's serving files under `humocon_demo/`.

    `app_dir` defaults to the source tree's `app/` folder (it is not part of an installed wheel). Symbolic links
    are refused, never followed."""
    import importlib.util

    app = Path(app_dir) if app_dir is not None else Path(__file__).resolve().parents[1] / "app"
    if not (app / "app.py").is_file():
        raise FileNotFoundError(f"{app}: no app.py; run from a source checkout of humocon-hf or give app_dir= "
                                "(the folder of the Space: app.py, README.md, requirements.txt, examples/)")
    files: dict[str, Path] = {}

    def add(path_in_repo: str, path: Path) -> None:
        if not _regular_file(path):
            raise ValueError(f"{path}: a symbolic link or not a regular file; the Space uploads regular files only")
        files[path_in_repo] = path

    for name in _SPACE_APP_FILES:
        if not (app / name).exists():
            raise FileNotFoundError(f"{app / name} is missing: a Space needs app.py, README.md and requirements.txt")
        add(name, app / name)
    examples = app / "examples"
    if examples.is_dir():
        for path in sorted(examples.iterdir()):
            if path.suffix == ".bvh" or path.name == "README.md":
                add(f"examples/{path.name}", path)

    for package in SPACE_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"{package} is not importable here: the Space carries its code")
        root = Path(list(spec.submodule_search_locations)[0])
        target = package.replace(".", "/")
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if (path.suffix not in _PACKAGE_SUFFIXES or "__pycache__" in relative.parts
                    or any(part.startswith(".") for part in relative.parts) or path.is_dir()):
                continue
            name = f"{target}/{relative.as_posix()}"
            if package == "humocon_hf" and relative.parts[0] in {p.split(".")[1] for p in SPACE_PACKAGES[1:]}:
                continue  # a sub-package of its own, added from its own folder
            add(name, path)

    model = Path(model_dir).expanduser()
    if not (model / "config.json").is_file():
        raise FileNotFoundError(f"{model}: no config.json, so not a checkpoint folder; give the output folder of "
                                "`humocon demo` (or of `humocon finetune`)")
    served = sorted(p for p in model.iterdir() if _SPACE_CHECKPOINT_FILE.fullmatch(p.name))
    if not any(p.suffix == ".safetensors" for p in served):
        raise FileNotFoundError(f"{model}: no model*.safetensors weights to serve")
    for path in served:
        add(f"{SPACE_MODEL_DIR}/{path.name}", path)
    return files


def push_space(repo_id: str, model_dir: str | os.PathLike, *, app_dir: str | os.PathLike | None = None,
               private: bool | None = None, token: bool | str | None = None,
               commit_message: str = "Upload the HuMoCon Space and the checkpoint it serves"):
    """Create (or update) the Gradio Space `repo_id` in one commit: the app, its examples, the humocon_hf code it
    imports and the checkpoint `model_dir` as `humocon_demo/` ([`space_files`] lists them). The Space's README.md
    front matter (sdk: gradio, sdk_version, app_file) comes from the app folder. Returns the `CommitInfo`."""
    from huggingface_hub import CommitOperationAdd
    from transformers.utils.hub import hf_api

    if not isinstance(repo_id, str) or not _HUB_ID.fullmatch(repo_id.strip()):
        raise ValueError(f"repo_id must be an 'org/name' string, got {repo_id!r}")
    files = space_files(model_dir, app_dir)
    api = hf_api()
    repo_id = api.create_repo(repo_id.strip(), private=private, token=token, exist_ok=True, repo_type="space",
                              space_sdk="gradio").repo_id
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for name, path in files.items()]
    return api.create_commit(repo_id, operations=operations, commit_message=commit_message, token=token,
                             repo_type="space")


__all__ = [
    "BENCHMARK_CONFIGS",
    "BENCHMARK_MANIFEST",
    "PROCESSOR_AUTO_MAP",
    "REMOTE_CODE_AUTO_MAP",
    "REMOTE_CODE_PIP",
    "benchmark_files",
    "default_model_card",
    "export_benchmark",
    "push_benchmark",
    "public_name",
    "push_space",
    "push_to_hub",
    "save_for_remote_code",
    "space_files",
]
