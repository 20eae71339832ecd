"""The package builds as a wheel and an sdist that install into a fresh virtual environment and work there (issue 30:
publishing it should be one command away). Nothing is downloaded: the environment sees the dependencies already
installed for the tests (a `.pth` file), and the package comes only from what was built."""

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("humocon_hf", "modeling", "processing", "training")
# What a built distribution must hold besides the modules: the recipes, the model-card template, and the three
# top-level folders installed as sub-packages of humocon_hf.
REQUIRED = ("humocon_hf/recipes/small.yaml", "humocon_hf/recipes/paper.yaml", "humocon_hf/templates/README.md.jinja",
            "humocon_hf/modeling/modeling_humocon.py", "humocon_hf/processing/processing_humocon.py",
            "humocon_hf/training/instruction_tuning.py", "humocon_hf/metrics/babel_qa_accuracy/babel_qa_accuracy.py")

SMOKE = """
import json, sys
from pathlib import Path
import humocon_hf
assert Path(humocon_hf.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), humocon_hf.__file__
from humocon_hf.recipes import load_recipe
from humocon_hf.model_card import TEMPLATE_PATH, render_model_card
from humocon_hf.processing.motion_io import load_motion
import humocon_hf.modeling.modeling_humocon, humocon_hf.processing.processing_humocon, humocon_hf.training.instruction_tuning
assert load_recipe("small").model.llm_name_or_path and TEMPLATE_PATH.is_file()
assert "## Usage" in render_model_card(None, model_name="smoke")
print("SMOKE OK")
"""


def _run(command, **kwargs):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.setdefault("OMP_NUM_THREADS", "1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


def _venv(folder: Path) -> Path:
    """A fresh virtual environment without pip that sees this interpreter's installed packages (torch,
    transformers, ...) after its own: the package under test can only come from what is installed into it."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(folder)])
    python = folder / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "zz_dependencies.pth").write_text("".join(f"{p}\n" for p in paths))
    return python


def _install(python: Path, target: Path, *extra: str) -> None:
    # pip runs from this environment into the new one (`--python`), offline, without dependencies: they are seen.
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", *extra,
          str(target)])


def _smoke(python: Path, cwd: Path) -> None:
    assert "SMOKE OK" in _run([str(python), "-c", SMOKE], cwd=cwd).stdout
    helped = _run([str(python.parent / "humocon"), "--help"], cwd=cwd).stdout  # the console script
    assert "inspect" in helped and "ask" in helped


@pytest.mark.slow
def test_wheel_and_sdist_install_into_a_fresh_venv_and_work(tmp_path):
    pytest.importorskip("setuptools")
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info next to the sources
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    for name in SOURCE_DIRS:
        shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    for kind in ("wheel", "sdist"):  # the PEP 517 backend pyproject.toml names, one process per build as a frontend
        build = f"import sys; from setuptools import build_meta as backend; print(backend.build_{kind}(sys.argv[1]))"
        _run([sys.executable, "-c", build, str(dist)], cwd=source)
    wheel, sdist = next(dist.glob("*.whl")), next(dist.glob("*.tar.gz"))

    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert [f for f in REQUIRED if f not in in_wheel] == []
    assert not any(n.split("/")[0] in ("modeling", "processing", "training", "tests") for n in in_wheel)
    in_sdist = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    sdist_paths = [f.replace("humocon_hf/modeling/", "modeling/").replace("humocon_hf/processing/", "processing/")
                   .replace("humocon_hf/training/", "training/") for f in REQUIRED]
    assert [f for f in sdist_paths if f not in in_sdist] == []

    elsewhere = tmp_path / "elsewhere"  # not the repository: nothing importable from the working directory
    elsewhere.mkdir()
    from_wheel = _venv(tmp_path / "venv-wheel")
    _install(from_wheel, wheel)
    _smoke(from_wheel, elsewhere)
    from_sdist = _venv(tmp_path / "venv-sdist")
    _install(from_sdist, sdist, "--no-build-isolation")
    _smoke(from_sdist, elsewhere)
