"""Recipes: the shipped files parse into training arguments, user files (YAML / JSON) and overrides are checked and
named in errors, LoRA settings are a `peft.LoraConfig`, and the machine-precision decision is one function."""

import json
from pathlib import Path

import pytest

from humocon_hf.cli import main
from humocon_hf.recipes import (
    SECTIONS,
    RecipeError,
    load_recipe,
    overrides_from_strings,
    parse_override,
)


def test_shipped_recipes_parse_into_training_arguments(tmp_path):
    small = load_recipe("small")
    targs, tune = small.training_args("tune", output_dir=tmp_path)
    assert targs.output_dir == str(tmp_path)
    assert tune.lora["r"] == 8 and tune.lora_config(train_projectors=False).r == 8 and targs.max_steps > 0
    assert small.model.llm_name_or_path == "SmolLM2-135M-Instruct"

    paper = load_recipe("paper")
    assert paper.model.llm_name_or_path == "meta-llama/Llama-3.1-8B-Instruct"
    assert paper.model.vision_model_name_or_path == "google/siglip-base-patch16-224"
    assert paper.model.codebook_size == 512
    pre_args, pre = paper.training_args("pretrain", output_dir=tmp_path, bf16=False)
    assert (pre.phase1_max_steps, pre.phase1_learning_rate) == (60000, 1e-4)
    assert (pre.phase2_max_steps, pre.phase2_learning_rate) == (8000, 1e-5)
    tr_args, _ = paper.training_args("translate", output_dir=tmp_path, bf16=False)
    assert tr_args.learning_rate == 1e-4
    assert tr_args.per_device_train_batch_size * tr_args.gradient_accumulation_steps == 32
    tu_args, tu = paper.training_args("tune", output_dir=tmp_path, bf16=False)
    assert (tu.lora["r"], tu.lora["lora_dropout"], tu_args.learning_rate) == (8, 0.05, 3e-4)
    assert tu_args.per_device_train_batch_size * tu_args.gradient_accumulation_steps == 16


def test_tune_lora_is_a_peft_lora_config(tmp_path):
    """`tune.lora` holds `peft.LoraConfig` arguments; the loose lora_* keys of earlier recipes are read into it (the
    same section and fingerprint either way); an override changes one key; bad settings are named at load."""
    from peft import LoraConfig

    old = load_recipe(_write_recipe(tmp_path / "old.yaml", {"tune": {"lora_r": 4, "lora_alpha": 8,
                                                                      "lora_target_modules": ".*q_proj"}}))
    new = load_recipe(_write_recipe(tmp_path / "new.yaml", {"tune": {"lora": {"r": 4, "lora_alpha": 8,
                                                                              "lora_dropout": 0.05,
                                                                              "target_modules": ".*q_proj"}}}))
    assert old.sections["tune"] == new.sections["tune"] and old.fingerprint("tune") == new.fingerprint("tune")
    _, tune = new.training_args("tune", output_dir=tmp_path)
    config = tune.lora_config(train_projectors=True)
    assert isinstance(config, LoraConfig) and (config.r, config.lora_alpha, config.target_modules) == (4, 8, ".*q_proj")
    assert config.task_type == "CAUSAL_LM" and config.bias == "none" and set(config.modules_to_save) == {
        "motion_projector", "video_projector"}
    small = load_recipe("small", overrides=overrides_from_strings(["tune.lora={r: 16}"]))
    assert small.sections["tune"]["lora"] == {"r": 16, "lora_alpha": 16, "lora_dropout": 0.0}
    assert load_recipe("small", overrides={"tune": {"lora_r": 2}}).sections["tune"]["lora"]["r"] == 2
    for bad, match in (({"rr": 3}, "unexpected keyword argument 'rr'"), ({"r": 0}, r"tune\.lora\.r .* >= 1"),
                       ({"modules_to_save": ["x"]}, "set by the stage"), ("x", "lora must be a mapping")):
        with pytest.raises(RecipeError, match=match):
            load_recipe("small", overrides={"tune": {"lora": bad}})


def _write_recipe(path: Path, data: dict) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(data))
    else:
        import yaml

        path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_recipe_files_yaml_and_json(tmp_path, suffix):
    data = {
        "model": {"llm_name_or_path": "some/llm", "codebook_size": 32},
        "tune": {"max_steps": 7, "learning_rate": 5e-4, "lora_r": 4, "per_device_train_batch_size": 2},
        "evaluate": {"baseline": "zero_shot"},
    }
    recipe = load_recipe(_write_recipe(tmp_path / f"r{suffix}", data))
    targs, tune = recipe.training_args("tune", output_dir=tmp_path / "out")
    assert (targs.max_steps, targs.learning_rate, tune.lora["r"], targs.per_device_train_batch_size) == (7, 5e-4, 4, 2)
    assert recipe.model.codebook_size == 32 and recipe.evaluate.baseline == "zero_shot"
    assert recipe.data.num_train_motions > 0  # missing sections take the dataclass defaults


def test_unknown_key_names_key_section_and_file(tmp_path):
    path = _write_recipe(tmp_path / "bad.yaml", {"tune": {"max_stepz": 3}})
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    message = str(err.value)
    assert "max_stepz" in message and "'tune'" in message and str(path) in message


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# Each case writes its recipe file (or names a missing one) and returns its path.
@pytest.mark.parametrize(
    "make_recipe, match",
    [
        pytest.param(lambda t: _write_recipe(t / "a.yaml", {"trainer": {}}), "unknown section", id="unknown_section"),
        pytest.param(lambda t: t / "missing.yaml", "not found", id="missing_file"),
        pytest.param(lambda t: _write_text(t / "b.txt", "model: {}"), r"\.yaml", id="not_yaml_or_json"),
        pytest.param(lambda t: _write_text(t / "c.yaml", "model: [unclosed"), "cannot parse", id="unparsable_yaml"),
        pytest.param(lambda t: _write_recipe(t / "d.yaml", {"model": {"encoder_preset": "huge"}}), "encoder_preset",
                     id="unknown_encoder_preset"),
        pytest.param(lambda t: _write_recipe(t / "e.yaml", {"evaluate": {"baseline": "oracle"}}), "baseline",
                     id="unknown_baseline"),
        *[
            pytest.param(lambda t, s=subjects: _write_recipe(t / "f.yaml", {"data": {"cmu_holdout_subjects": s}}),
                         "cmu_holdout_subjects", id=f"cmu_holdout_subjects_{name}")
            for name, subjects in (("as_text", "2, 8"), ("with_a_string", [2, "8"]), ("zero", [0]), ("bool", [True]))
        ],
    ],
)
def test_bad_recipes_raise_clear_errors(tmp_path, make_recipe, match):
    path = make_recipe(tmp_path)
    with pytest.raises(RecipeError, match=match):
        load_recipe(path)


def test_bf16_recipes_run_on_a_cpu_machine(tmp_path):
    """One recipe for GPU and laptop: bf16 without a GPU becomes CPU autocast (native bf16 CPUs) or float32."""
    import torch

    from humocon_hf.recipes import cpu_has_bf16

    if torch.cuda.is_available():
        pytest.skip("checks the CPU fallback")
    targs, _ = load_recipe("paper").training_args("tune", output_dir=tmp_path)
    if cpu_has_bf16():
        assert targs.bf16 and targs.use_cpu
    else:
        assert not targs.bf16


def test_float32_path_can_be_forced_on_a_bf16_cpu(tmp_path, monkeypatch):
    """`HUMOCON_CPU_BF16=0`: the recipe's bf16 stages run in float32, as on a CPU without native bf16, and the
    pipeline says so."""
    import torch

    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions
    from humocon_hf.recipes import cpu_has_bf16

    if torch.cuda.is_available():
        pytest.skip("checks the CPU path")
    for value in ("0", "false", "off"):
        monkeypatch.setenv("HUMOCON_CPU_BF16", value)
        assert not cpu_has_bf16()
        targs, _ = load_recipe("small").training_args("tune", output_dir=tmp_path)
        assert not targs.bf16 and not targs.use_cpu
    same_schedule = {"model": {"float32_llm_steps_scale": 1.0}}
    pipeline = HuMoConPipeline(PipelineOptions(output_dir=str(tmp_path / "run"), overrides=same_schedule))
    assert pipeline.llm_precision() == "float32 (this CPU has no native bf16)"
    monkeypatch.setenv("HUMOCON_CPU_BF16", "1")  # anything else leaves the hardware's answer
    assert pipeline.llm_precision() in ("float32 (this CPU has no native bf16)", "bf16 autocast (CPU with native bf16)")


def test_float32_cpu_takes_the_recipes_lighter_schedule(tmp_path, monkeypatch):
    """model.float32_llm_steps_scale shortens the LLM stages (2, 3, text-only baseline) only where they would run in
    float32 on a CPU, says so, and leaves stage 1 and the stage fingerprints of a bf16 machine alone."""
    import torch

    import humocon_hf.precision as precision
    from humocon_hf.pipeline.stages import HuMoConPipeline, PipelineOptions

    if torch.cuda.is_available():
        pytest.skip("checks the CPU path")
    lighter = {"model": {"float32_llm_steps_scale": 0.5}, "evaluate": {"baseline_max_steps": 100}}
    plain = load_recipe("small", overrides={"evaluate": {"baseline_max_steps": 100}})
    monkeypatch.setenv("HUMOCON_CPU_BF16", "0")
    fp32 = HuMoConPipeline(PipelineOptions(output_dir=str(tmp_path / "a"), overrides=lighter))
    assert fp32.float32_schedule == 0.5 and "LLM stages at 0.5x their steps" in fp32.llm_precision()
    for section, key in (("translate", "max_steps"), ("tune", "max_steps"), ("evaluate", "baseline_max_steps")):
        assert fp32.recipe.sections[section][key] == plain.sections[section][key] // 2
    assert fp32.recipe.sections["pretrain"]["phase1_max_steps"] == plain.sections["pretrain"]["phase1_max_steps"]

    monkeypatch.setenv("HUMOCON_CPU_BF16", "1")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    bf16 = HuMoConPipeline(PipelineOptions(output_dir=str(tmp_path / "b"), overrides=lighter))
    assert bf16.float32_schedule is None and bf16.llm_precision() == "bf16 autocast (CPU with native bf16)"
    assert bf16.recipe.sections["tune"]["max_steps"] == plain.sections["tune"]["max_steps"]
    same = HuMoConPipeline(PipelineOptions(output_dir=str(tmp_path / "c"), overrides={"evaluate": {"baseline_max_steps": 100}}))
    assert bf16.fingerprint("model", "tune") == same.fingerprint("model", "tune")  # the field itself changes no stage
    with pytest.raises(RecipeError, match="float32_llm_steps_scale must be in"):
        load_recipe("small", overrides={"model": {"float32_llm_steps_scale": 0}})


def test_overrides_and_step_scaling():
    assert parse_override("tune.max_steps=20") == ("tune", "max_steps", 20)
    assert parse_override("model.system_prompt=null") == ("model", "system_prompt", None)
    with pytest.raises(RecipeError, match="section.key=value"):
        parse_override("max_steps=3")
    with pytest.raises(RecipeError, match="unknown section"):
        parse_override("trainer.max_steps=3")
    recipe = load_recipe("small", overrides=overrides_from_strings(["tune.max_steps=40", "data.seed=3"]))
    assert recipe.sections["tune"]["max_steps"] == 40 and recipe.data.seed == 3
    with pytest.raises(RecipeError, match="lora_rank"):
        load_recipe("small", overrides={"tune": {"lora_rank": 4}})
    scaled = recipe.scaled(0.1)
    assert scaled.sections["tune"]["max_steps"] == 4
    assert scaled.sections["pretrain"]["phase1_max_steps"] == max(1, round(recipe.sections["pretrain"]["phase1_max_steps"] * 0.1))
    assert recipe.scaled(1e-6).sections["translate"]["max_steps"] == 1
    with pytest.raises(RecipeError):
        recipe.scaled(0)
    assert set(recipe.to_dict()) == set(SECTIONS)


def test_cli_trains_the_baseline_alongside_unless_told_otherwise():
    """`humocon demo` (and the other recipe commands) ask for the baseline in a second process; the flag turns it off."""
    from humocon_hf.cli import _demo_options, build_parser

    for command in (["demo"], ["ablate"], ["tune"]):
        assert _demo_options(build_parser().parse_args(command)).baseline_alongside is True
        assert _demo_options(build_parser().parse_args([*command, "--sequential-baseline"])).baseline_alongside is False


def test_numbers_written_as_yaml_strings_reach_training_as_numbers(tmp_path):
    """YAML 1.1 reads `3e-3` (no dot) as a string; it used to reach AdamW as text and crash in the optimizer."""
    recipe = load_recipe("small", overrides_from_strings(
        ["pretrain.phase1_learning_rate=3e-3", "tune.learning_rate=1e-4", "tune.max_steps=2e2", "data.max_frames=96.0"]
    ))  # fmt: skip
    _, pretrain = recipe.training_args("pretrain", tmp_path)
    targs, _ = recipe.training_args("tune", tmp_path)
    assert pretrain.phase1_learning_rate == 3e-3 and isinstance(pretrain.phase1_learning_rate, float)
    assert targs.learning_rate == 1e-4 and targs.max_steps == 200 and isinstance(targs.max_steps, int)
    assert recipe.data.max_frames == 96 and isinstance(recipe.data.max_frames, int)
    for bad, message in (("tune.learning_rate=fast", "learning_rate must be a number, got 'fast'"),
                         ("tune.max_steps=2.5", "max_steps must be an integer, got 2.5")):
        with pytest.raises(RecipeError, match=message):
            load_recipe("small", overrides_from_strings([bad]))


def test_cli_reports_recipe_errors_without_traceback(tmp_path, capsys):
    rc = main(["pretrain", "--recipe", str(tmp_path / "nope.yaml"), "--output-dir", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "humocon pretrain: error:" in err and "nope.yaml" in err and "Traceback" not in err
    rc = main(["demo", "--override", "tune.bogus=1", "--output-dir", str(tmp_path / "o")])
    assert rc == 2 and "bogus" in capsys.readouterr().err


@pytest.mark.parametrize(
    "override, message",
    [
        ("tune.learning_rate=[1, 2]", "learning_rate must be a number, got list"),
        ("tune.learning_rate=.inf", "learning_rate must be finite"),
        ("tune.learning_rate=-0.1", "learning_rate must be >= 0, got -0.1"),
        ("pretrain.lambda_velocity=-1", "lambda_velocity must be >= 0, got -1"),
        ("data.procedural_realism=-1", "procedural_realism must be >= 0, got -1"),
        ("data.procedural_realism=.nan", "procedural_realism must be finite"),
        ("data.num_train_motions=true", "num_train_motions must be an integer, got bool"),
        ("model.llm_name_or_path=123", "llm_name_or_path must be a string, got int"),
        ("data.mirror_train=yes please", "mirror_train must be true or false"),
        ("model.encoder_overrides=[1]", "encoder_overrides must be a mapping"),
    ],
)
def test_recipe_values_of_the_wrong_type_are_refused(override, message, capsys):
    assert main(["pretrain", "--override", override, "--output-dir", "unused"]) == 2
    err = capsys.readouterr().err
    assert message in err and "small.yaml" in err and "Traceback" not in err


def test_recipe_sections_and_encoding_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tune: fast\n")
    with pytest.raises(RecipeError, match=r"bad.yaml: section 'tune' must be a mapping.*str 'fast'"):
        load_recipe(bad)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("model:\n  system_prompt: caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecipeError, match="latin.yaml: a recipe is UTF-8 text"):
        load_recipe(latin)


@pytest.mark.parametrize("section, cuda, native, expected", [
    ({"bf16": False}, False, True, ("float32", {}, False, False)),
    ({"bf16": True}, True, False, ("bf16 (GPU)", {}, True, False)),
    ({"bf16": True, "use_cpu": True}, False, False, ("bf16 autocast (CPU, use_cpu)", {}, True, False)),
    ({"bf16": True}, False, True, ("bf16 autocast (CPU with native bf16)", {"use_cpu": True}, True, False)),
    ({"bf16": True}, False, False, ("float32 (this CPU has no native bf16)", {"bf16": False}, False, True)),
])
def test_llm_precision_is_one_decision(monkeypatch, section, cuda, native, expected):
    """The machine-precision decision in one place (`humocon_hf.precision.llm_precision`): its name, what the training
    arguments change, whether the LLM computes in bf16 and whether bf16 fell back to float32."""
    import torch

    import humocon_hf.precision as precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: native)
    plan = precision.llm_precision(section)
    assert (plan.name, plan.training_changes, plan.bf16, plan.float32_fallback) == expected


def test_earlier_names_of_recipe_keys_are_read_under_todays():
    """`pretrain.lambda_act` (the velocity objective's earlier name) is `lambda_velocity`; both at once is an error;
    the stage-1 schedule class keeps its earlier name as an alias."""
    from humocon_hf.training.concept_discovery import ConceptDiscoveryRecipe, ConceptDiscoverySchedule

    old = load_recipe("small", overrides={"pretrain": {"lambda_act": 0.5}})
    new = load_recipe("small", overrides={"pretrain": {"lambda_velocity": 0.5}})
    assert old.sections["pretrain"] == new.sections["pretrain"] and old.fingerprint("pretrain") == new.fingerprint(
        "pretrain")
    with pytest.raises(RecipeError, match="lambda_act is the old name of lambda_velocity"):
        load_recipe("small", overrides={"pretrain": {"lambda_act": 0.5, "lambda_velocity": 0.4}})
    assert ConceptDiscoveryRecipe is ConceptDiscoverySchedule


def test_a_recipe_can_start_from_another(tmp_path):
    """`base: NAME` reads a shipped recipe (or a file beside this one) first and replaces its keys one by one: the
    release recipe is the small one with stage 3 twice as long; cycles and missing bases are named."""
    small, release = load_recipe("small"), load_recipe("release")
    assert release.sections["tune"]["max_steps"] == 2 * small.sections["tune"]["max_steps"]
    release.sections["tune"]["max_steps"] = small.sections["tune"]["max_steps"]
    assert release.sections == small.sections
    mine = _write_recipe(tmp_path / "mine.yaml", {"base": "release", "tune": {"learning_rate": 5e-4}})
    recipe = load_recipe(mine)
    assert recipe.sections["tune"]["max_steps"] == 1100 and recipe.sections["tune"]["learning_rate"] == 5e-4
    assert recipe.sections["model"] == small.sections["model"]
    _write_recipe(tmp_path / "a.yaml", {"base": "b.yaml"})
    _write_recipe(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(RecipeError, match="form a cycle"):
        load_recipe(tmp_path / "a.yaml")
    with pytest.raises(RecipeError, match="base recipe 'nope' not found"):
        load_recipe(_write_recipe(tmp_path / "c.yaml", {"base": "nope"}))


def test_every_numeric_recipe_field_declares_its_lower_bound():
    """Counts, step budgets, rates and loss weights of our recipe sections declare a minimum (the class's `MINIMUMS`),
    checked when a recipe is read and when a section is built in Python; the three fractions check their own range."""
    import dataclasses
    import typing

    from humocon_hf import recipes

    own_range = {"float32_llm_steps_scale", "option_questions_share", "baseline_steps_fraction"}
    for cls in (recipes.ModelArguments, recipes.DataArguments, recipes.PretrainArguments, recipes.TranslateArguments,
                recipes.TuneArguments, recipes.EvaluateArguments):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kinds = {a for a in (typing.get_args(hints[f.name]) or (hints[f.name],)) if a is not type(None)}
            if kinds & {int, float} and f.name not in own_range:
                assert f.name in getattr(cls, "MINIMUMS", {}), f"{cls.__name__}.{f.name} declares no minimum"
    with pytest.raises(RecipeError, match=r"data\.num_train_motions must be >= 1, got 0"):
        recipes.DataArguments(num_train_motions=0)
    with pytest.raises(RecipeError, match=r"evaluate\.max_samples must be >= 1, got 0"):
        recipes.EvaluateArguments(max_samples=0)
    with pytest.raises(RecipeError, match=r"per_device_train_batch_size must be >= 1, got 0"):
        load_recipe("small", {"tune": {"per_device_train_batch_size": 0}})
