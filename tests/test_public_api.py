"""The package's public names (issue 29): every name in `humocon_hf.__all__` / its lazy map imports, and
`humocon_hf.finetune` is one thing (the module behind `humocon finetune`), whatever was imported before."""

import inspect
import subprocess
import sys

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
