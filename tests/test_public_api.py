"""The package's public names (issue 29): every name in `humocon_hf.__all__` / its lazy map imports, and
`humocon_hf.finetune` is one thing (the module behind `humocon finetune`), whatever was imported before."""

import inspect
import subprocess
import sys
import textwrap

import pytest

import humocon_hf


@pytest.mark.parametrize("name", sorted(set(humocon_hf.__all__) | set(humocon_hf._LAZY)))
def test_every_public_name_imports(name):
    namespace: dict = {}
    exec(f"from humocon_hf import {name}", namespace)
    value = namespace[name]
    assert value is not None and value is getattr(humocon_hf, name)


def test_model_classes_exported():
    from humocon_hf import HuMoConForCausalLM, HuMoConForConceptDiscovery, HuMoConModel

    assert HuMoConModel is HuMoConForCausalLM(_tiny_config()).model.__class__
    assert HuMoConForConceptDiscovery.__name__ == "HuMoConForConceptDiscovery"


def _tiny_config():
    from humocon_tiny import tiny_config

    return tiny_config()


def test_finetune_is_the_module_before_and_after_it_is_imported():
    """Before: the package's lazy `finetune` was `training.instruction_tuning.finetune` (another signature) until
    something imported the `humocon_hf.finetune` module, which then replaced it."""
    code = (
        "import inspect, humocon_hf\n"
        "first = humocon_hf.finetune\n"
        "from humocon_hf import finetune as imported\n"
        "import humocon_hf.finetune as module\n"
        "assert inspect.ismodule(first) and first is imported is module is humocon_hf.finetune, first\n"
        "assert list(inspect.signature(module.finetune).parameters)[:3] == "
        "['model_name_or_path', 'train_data', 'output_dir']\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_paper_recipe_function_has_its_own_name():
    from humocon_hf import finetune_with_paper_recipe
    from humocon_hf.training.instruction_tuning import finetune

    assert finetune is finetune_with_paper_recipe  # the earlier name still works where it was defined
    assert list(inspect.signature(finetune_with_paper_recipe).parameters)[:2] == ["stage", "model"]


@pytest.mark.parametrize("first", [
    "import humocon_hf\nassert 'transformers' not in sys.modules and 'torch' not in sys.modules\n",  # lazy
    "import humocon_hf\nimport peft\n",  # transformers imported by another package
    "import transformers\nimport humocon_hf\n",  # already imported: registered at once
    "from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM\n",  # our module imports transformers first
    "from humocon_hf import MotionVideoProcessor\n",
])
def test_importing_the_package_registers_the_auto_classes(first):
    """`import humocon_hf` registers HuMoCon with the Auto classes once transformers is imported (issue 30: registering
    at import made `humocon --help` import torch and transformers, ~9 s)."""
    code = ("import sys\n" + first +
            "from transformers import AutoConfig, AutoModel, AutoProcessor\n"
            "from transformers.models.auto.configuration_auto import CONFIG_MAPPING\n"
            "from transformers.models.auto.processing_auto import PROCESSOR_MAPPING\n"
            "import humocon_hf.modeling.modeling_humocon as m\n"
            "assert CONFIG_MAPPING['humocon'].__name__ == 'HuMoConConfig'\n"
            "assert PROCESSOR_MAPPING[CONFIG_MAPPING['humocon']].__name__ == 'MotionVideoProcessor'\n"
            "assert type(sys.modules['transformers'].__spec__.loader).__module__ != 'humocon_hf'\n"
            "assert type(m.__loader__).__module__ != 'humocon_hf'\n"
            "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_no_module_reads_a_recipe_at_import():
    """Importing any module of the package reads no YAML: recipes are read when a command asks for one (issue 32)."""
    code = textwrap.dedent("""
        import importlib, pathlib, yaml

        def refuse(*args, **kwargs):
            raise AssertionError("YAML read at import time")

        yaml.safe_load = yaml.load = refuse
        import humocon_hf

        root = pathlib.Path(humocon_hf.__file__).resolve().parents[1]
        folders = {"humocon_hf": "humocon_hf", "humocon_hf/pipeline": "humocon_hf.pipeline",
                   "modeling": "humocon_hf.modeling", "processing": "humocon_hf.processing",
                   "training": "humocon_hf.training"}
        names = [f"{package}.{p.stem}" for folder, package in folders.items() for p in (root / folder).glob("*.py")
                 if p.stem not in ("__init__", "__main__")]
        for name in sorted(names):
            importlib.import_module(name)
        print("ok", len(names))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
