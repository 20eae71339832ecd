"""Training recipes: one YAML (or JSON) file describes all three HuMoCon stages and the evaluation.

A recipe has one section per concern, each parsed with `transformers.HfArgumentParser` into dataclasses (the
HF way), so every key is checked against a real field and unknown keys fail with the section and file named:

```yaml
model:      # -> ModelArguments: which LLM, vision tower and encoder size
data:       # -> DataArguments: the built-in benchmark, real CMU mocap, or your own QA file
pretrain:   # -> TrainingArguments + PretrainArguments (stage 1, concept discovery; two phases)
translate:  # -> TrainingArguments + TranslateArguments (stage 2, projectors on captions)
tune:       # -> TrainingArguments + TuneArguments (stage 3, LoRA instruction tuning)
evaluate:   # -> EvaluateArguments (held-out accuracy, text-only baseline)
```

Two recipes ship with the package: `small` (what `humocon demo` runs on 2 CPU cores) and `paper` (the
paper's models and hyper-parameters, for GPUs). `load_recipe("small")`, `load_recipe("path/to/my.yaml")`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import os
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, TrainingArguments

from humocon_hf.precision import CPU_BF16_ENV, cpu_has_bf16, llm_precision  # noqa: F401 - CPU_BF16_ENV, cpu_has_bf16 re-exported
from humocon_hf.recipe_sections import (  # noqa: F401 - the sections are part of this module's API
    DEFAULT_LORA,
    LORA_ALIASES,
    SECTION_CLASSES,
    TRAINING_SECTIONS,
    DataArguments,
    EvaluateArguments,
    ModelArguments,
    PretrainArguments,
    RecipeError,
    TranslateArguments,
    TuneArguments,
    check_minimums,
)

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"
SHIPPED_RECIPES = ("small", "release", "paper")
SECTIONS = ("model", "data", "pretrain", "translate", "tune", "evaluate")


def _renamed_keys(sections: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`sections` with the keys of earlier recipes under today's names: `pretrain.lambda_act` ->
    `lambda_velocity`, the loose `tune.lora_*` keys -> `tune.lora` (the same stage fingerprint either way)."""
    pretrain = dict(sections.get("pretrain", {}))
    if "lambda_act" in pretrain:
        if "lambda_velocity" in pretrain:
            raise RecipeError("pretrain: lambda_act is the old name of lambda_velocity; give one of them")
        pretrain["lambda_velocity"] = pretrain.pop("lambda_act")
    return {**sections, "pretrain": pretrain, "tune": _fold_lora_aliases(sections.get("tune", {}))}


def _fold_lora_aliases(tune: dict[str, Any]) -> dict[str, Any]:
    """`tune` with the loose `lora_*` keys of earlier recipes moved into its `lora` mapping (a recipe written either
    way gives the same section, so the same stage fingerprint)."""
    loose = {k: tune[k] for k in LORA_ALIASES if k in tune}
    if not loose:
        return tune
    lora = tune.get("lora", dict(DEFAULT_LORA))
    if not isinstance(lora, Mapping):
        raise RecipeError(f"tune.lora must be a mapping of peft.LoraConfig arguments, got {type(lora).__name__}")
    out = {k: v for k, v in tune.items() if k not in LORA_ALIASES}
    out["lora"] = {**lora, **{LORA_ALIASES[k]: v for k, v in loose.items() if v is not None}}
    return out



# --------------------------------------------------------------------------------------------------- Recipe


@dataclass
class Recipe:
    """A parsed recipe. `sections` keeps the raw dicts so stages can re-parse `TrainingArguments` with their own
    `output_dir`; the typed views are the properties below."""

    name: str
    source: str
    sections: dict[str, dict[str, Any]]

    def parse(self, section: str, **overrides) -> tuple:
        """Parse one section (plus `overrides`) into its dataclasses."""
        return _parse_section(section, {**self.sections.get(section, {}), **overrides}, self.source)

    @property
    def model(self) -> ModelArguments:
        return self.parse("model")[0]

    @property
    def data(self) -> DataArguments:
        return self.parse("data")[0]

    @property
    def evaluate(self) -> EvaluateArguments:
        return self.parse("evaluate")[0]

    def training_args(self, section: str, output_dir: str | os.PathLike, **overrides) -> tuple[TrainingArguments, Any]:
        """`(TrainingArguments, stage arguments)` of a training section with `output_dir` set (the recipe's own
        `output_dir`, if any, is replaced: the pipeline decides where each stage writes)."""
        if section not in TRAINING_SECTIONS:
            raise RecipeError(f"{section!r} is not a training section; expected one of {TRAINING_SECTIONS}")
        values = {**self.sections.get(section, {}), **overrides, "output_dir": str(output_dir)}
        # Progress bars unless the recipe says otherwise (the Trainer's default hides them when transformers'
        # logging is quieter than WARNING, as it is in the demo).
        values.setdefault("disable_tqdm", False)
        values.update(llm_precision(values).training_changes)
        return _parse_section(section, values, self.source)

    def scaled(self, steps_scale: float, only: Iterable[str] | None = None) -> Recipe:
        """A copy with every step budget (of the sections in `only`, if given) multiplied by `steps_scale` (at least
        1 step where it was > 0)."""
        if not (steps_scale > 0 and math.isfinite(steps_scale)):
            raise RecipeError(f"steps_scale must be a positive number, got {steps_scale}")
        sections = copy.deepcopy(self.sections)
        for section, keys in (
            ("pretrain", ("phase1_max_steps", "phase2_max_steps")),
            ("translate", ("max_steps",)),
            ("tune", ("max_steps",)),
            ("evaluate", ("baseline_max_steps",)),
        ):
            if only is not None and section not in only:
                continue
            for key in keys:
                value = sections.get(section, {}).get(key)
                if isinstance(value, int) and value > 0:
                    sections[section][key] = max(1, int(round(value * steps_scale)))
        return Recipe(self.name, self.source, sections)

    def with_overrides(self, overrides: dict[str, dict[str, Any]]) -> Recipe:
        """A copy with `{section: {key: value}}` merged in (checked like the file itself)."""
        sections = copy.deepcopy(self.sections)
        for section, values in overrides.items():
            if section not in SECTIONS:
                raise RecipeError(f"unknown recipe section {section!r}; expected one of {SECTIONS}")
            values = dict(values)
            current = sections.setdefault(section, {})
            if isinstance(values.get("lora"), Mapping) and isinstance(current.get("lora"), Mapping):
                values["lora"] = {**current["lora"], **values["lora"]}  # `tune.lora={r: 16}` changes the rank only
            current.update(values)
        recipe = Recipe(self.name, self.source, _renamed_keys(sections))
        recipe.validate()
        return recipe

    def validate(self) -> Recipe:
        for section in SECTIONS:
            if section in TRAINING_SECTIONS:
                # Keys and types only: mixed precision is a property of the machine that will run the stage
                # (the paper recipe asks for bf16 on GPUs and must still be readable on a laptop).
                self.training_args(section, output_dir="unused", bf16=False, fp16=False, tf32=None, use_cpu=False)
            else:
                self.parse(section)
        return self

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self.sections)

    def fingerprint(self, *sections: str, exclude: Mapping[str, Iterable[str]] | None = None) -> str:
        """Stable hash of some sections (stage markers use it to tell whether a finished stage still applies),
        leaving out the fields `exclude` names per section (those the stage does not read)."""
        import hashlib

        skip = {s: set(fields) for s, fields in (exclude or {}).items()}
        chosen = {
            s: {k: v for k, v in self.sections.get(s, {}).items() if k not in skip.get(s, ())}
            for s in (sections or SECTIONS)
        }
        return hashlib.sha256(json.dumps(chosen, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _numeric_kind(annotation) -> type | None:
    """`float` / `int` when a field is declared as one (optionally `| None`), else None."""
    args = typing.get_args(annotation)
    kinds = {a for a in (args or (annotation,)) if a is not type(None)}
    if kinds == {float} or kinds == {float, int}:
        return float
    return int if kinds == {int} else None


def _coerce_numbers(classes, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Numbers written as strings become numbers of the declared type: YAML 1.1 reads `3e-4` (no dot) as a string,
    which would otherwise reach the optimizer as text. A string that is not a number is named in the error."""
    out = dict(values)
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind = _numeric_kind(hints.get(f.name))
            value = out.get(f.name)
            if kind is None or isinstance(value, bool) or not isinstance(value, (str, float)):
                continue
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if kind is int and not number.is_integer() or not math.isfinite(number) and isinstance(value, str):
                expected = "an integer" if kind is int else "a number"
                raise RecipeError(f"{where}: {f.name} must be {expected}, got {value!r}")
            out[f.name] = int(number) if kind is int else number
    return out


# Lower bounds of the TrainingArguments fields a recipe sets (our own sections declare theirs as `MINIMUMS`);
# max_steps keeps its -1 ("train by epochs").
TRAINING_ARGUMENT_MINIMUMS = {
    "learning_rate": 0, "weight_decay": 0, "warmup_ratio": 0, "warmup_steps": 0, "num_train_epochs": 0,
    "max_grad_norm": 0, "per_device_train_batch_size": 1, "per_device_eval_batch_size": 1,
    "gradient_accumulation_steps": 1, "dataloader_num_workers": 0, "logging_steps": 0, "save_steps": 0,
}


def _plain_kind(annotation) -> tuple[type | None, bool]:
    """``(kind, optional)`` for fields declared as one of bool / int / float / str / dict (optionally | None)."""
    args = typing.get_args(annotation)
    kinds = {a for a in (args or (annotation,)) if a is not type(None)}
    optional = type(None) in args
    if kinds == {float, int}:
        kinds = {float}
    if len(kinds) == 1:
        kind = next(iter(kinds))
        kind = typing.get_origin(kind) or kind
        if kind in (bool, int, float, str, dict):
            return kind, optional
    return None, optional


def _check_types(classes, values: dict[str, Any], where: str) -> None:
    """Every value has its field's declared type (after `_coerce_numbers`): a list where a learning rate goes, a
    number where a model name goes, `true` where a count goes, infinities and negative rates are named here
    instead of surfacing mid-training."""
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            value = values[f.name]
            kind, optional = _plain_kind(hints.get(f.name))
            if kind is None or (value is None and optional):
                continue
            expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
                        dict: "a mapping"}[kind]
            ok = (isinstance(value, bool) if kind is bool
                  else isinstance(value, int) and not isinstance(value, bool) if kind is int
                  else isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
                  else isinstance(value, kind))
            if not ok:
                raise RecipeError(f"{where}: {f.name} must be {expected}{' or null' if optional else ''}, got "
                                  f"{type(value).__name__} {value!r}")
            if kind in (int, float):
                if not math.isfinite(value):
                    raise RecipeError(f"{where}: {f.name} must be finite, got {value!r}")
                # Our sections check their own MINIMUMS when built (`check_minimums`); TrainingArguments' are here.
                low = None if hasattr(cls, "MINIMUMS") else TRAINING_ARGUMENT_MINIMUMS.get(f.name)
                if low is not None and value < low:
                    raise RecipeError(f"{where}: {f.name} must be >= {low}, got {value!r}")


def _parse_section(section: str, values: dict[str, Any], source: str) -> tuple:
    if section not in SECTION_CLASSES:
        raise RecipeError(f"{source}: unknown recipe section {section!r}; expected one of {SECTIONS}")
    if not isinstance(values, dict):
        raise RecipeError(f"{source}: section {section!r} must be a mapping of keys to values, got {type(values).__name__}")
    classes = SECTION_CLASSES[section]
    known = {f.name for cls in classes for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise RecipeError(
            f"{source}: unknown key(s) {unknown} in section {section!r}. Allowed keys come from "
            f"{', '.join(c.__name__ for c in classes)}; check the spelling (see `humocon <command> --help` and the "
            f"shipped recipes in {RECIPE_DIR})."
        )
    values = _coerce_numbers(classes, values, f"{source}: section {section!r}")
    _check_types(classes, values, f"{source}: section {section!r}")
    parser = HfArgumentParser(classes)
    try:
        return tuple(parser.parse_dict(values, allow_extra_keys=False))
    except RecipeError as err:  # a section's own check (`__post_init__`): say which recipe
        raise RecipeError(f"{source}: {err}") from None
    except (TypeError, ValueError) as err:
        hint = ""
        if "bf16" in str(err) or "fp16" in str(err):
            hint = (f" (this recipe asks for mixed precision that this machine cannot run: add "
                    f"`--override {section}.fp16=false` / `--override {section}.bf16=false`)")
        raise RecipeError(f"{source}: section {section!r}: {err}{hint}") from err


def _read_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise RecipeError(f"{path}: a recipe is UTF-8 text; byte {err.start} is not ({err.reason})") from None
    except OSError as err:
        raise RecipeError(f"{path}: cannot read the recipe ({err.strerror or err})") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise RecipeError(f"{path}: recipe files must end in .yaml, .yml or .json")
    except RecipeError:
        raise
    except Exception as err:  # yaml.YAMLError / json.JSONDecodeError: say which file is broken
        raise RecipeError(f"{path}: cannot parse the recipe: {err}") from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping with sections {SECTIONS}, got {type(data).__name__}")
    return data


def resolve_recipe_path(name_or_path: str | os.PathLike) -> Path:
    """'small' / 'paper' -> the shipped file; anything else must be an existing .yaml/.yml/.json file."""
    text = str(name_or_path)
    if text in SHIPPED_RECIPES:
        return RECIPE_DIR / f"{text}.yaml"
    path = Path(text).expanduser()
    if not path.is_file():
        raise RecipeError(
            f"recipe {text!r} not found: give a shipped recipe name ({', '.join(SHIPPED_RECIPES)}) or the path of a "
            ".yaml/.json recipe file"
        )
    return path


@functools.cache
def _paper_sections() -> dict[str, dict[str, Any]]:
    return _read_file(resolve_recipe_path("paper"))


def paper_section(section: str) -> dict[str, Any]:
    """The paper recipe's values for one section (`recipes/paper.yaml`, the one place the paper's hyper-parameters are
    written down; the Python defaults of the trainers read them from here)."""
    return dict(_paper_sections()[section])


def _read_sections(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, dict[str, Any]]:
    """A recipe file's sections. `base: NAME` (a shipped recipe, or a file path relative to this one) reads that recipe
    first; this file's keys then replace its keys one by one (`recipes/release.yaml` is the small recipe, longer)."""
    path = path.resolve()
    if path in seen:
        raise RecipeError(f"{path}: `base` recipes form a cycle ({' -> '.join(str(p) for p in (*seen, path))})")
    data = _read_file(path)
    base = data.pop("base", None)
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise RecipeError(f"{path}: unknown section(s) {unknown}; a recipe has the sections {list(SECTIONS)} and "
                          "optionally `base`")
    for s in SECTIONS:
        if data.get(s) is not None and not isinstance(data[s], Mapping):
            raise RecipeError(f"{path}: section {s!r} must be a mapping of keys to values, got "
                              f"{type(data[s]).__name__} {data[s]!r}")
    sections = {s: dict(data.get(s) or {}) for s in SECTIONS}
    if base is None:
        return sections
    if not isinstance(base, str) or not base:
        raise RecipeError(f"{path}: base must name a recipe (e.g. base: small), got {base!r}")
    try:  # a shipped name, else a file beside this one
        base_path = resolve_recipe_path(base if base in SHIPPED_RECIPES else path.parent / base)
    except RecipeError:
        raise RecipeError(f"{path}: base recipe {base!r} not found (a shipped name {SHIPPED_RECIPES} or a file)") from None
    below = _read_sections(base_path, (*seen, path))
    return {s: {**below[s], **sections[s]} for s in SECTIONS}


def load_recipe(name_or_path: str | os.PathLike = "small", overrides: dict[str, dict[str, Any]] | None = None) -> Recipe:
    """Read and validate a recipe (shipped name or file path). `overrides`: `{section: {key: value}}`."""
    path = resolve_recipe_path(name_or_path)
    sections = _renamed_keys(_read_sections(path))
    name = str(name_or_path) if str(name_or_path) in SHIPPED_RECIPES else path.stem
    recipe = Recipe(name=name, source=str(path), sections=sections)
    if overrides:
        return recipe.with_overrides(overrides)
    return recipe.validate()


def parse_override(text: str) -> tuple[str, str, Any]:
    """'tune.max_steps=20' -> ('tune', 'max_steps', 20); the value is read as YAML (numbers, true, null, lists)."""
    import yaml

    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise RecipeError(f"override {text!r} must look like section.key=value (e.g. tune.max_steps=20)")
    key, raw = text.split("=", 1)
    section, name = key.split(".", 1)
    if section not in SECTIONS:
        raise RecipeError(f"override {text!r}: unknown section {section!r}; expected one of {SECTIONS}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise RecipeError(f"override {text!r}: cannot read the value: {err}") from err
    return section, name, value


def overrides_from_strings(items: list[str] | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        section, key, value = parse_override(item)
        out.setdefault(section, {})[key] = value
    return out


__all__ = [
    "DataArguments",
    "EvaluateArguments",
    "ModelArguments",
    "PretrainArguments",
    "Recipe",
    "RecipeError",
    "SECTIONS",
    "SHIPPED_RECIPES",
    "TranslateArguments",
    "TuneArguments",
    "load_recipe",
    "overrides_from_strings",
    "parse_override",
    "resolve_recipe_path",
]
