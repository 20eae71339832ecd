"""The Space folder (issue 30): app/README.md's front matter and app/requirements.txt make `app/` a Gradio Space, and
`push_space` uploads it, the humocon_hf code it imports and the checkpoint it serves, nothing else (checked with a
fake `HfApi`); the uploaded files, laid out as a Space, start the app."""

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

from humocon_hf.hub import SPACE_MODEL_DIR, SPACE_PACKAGES, push_space, space_files

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app"


def _front_matter(text: str) -> dict:
    import yaml

    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_space_readme_front_matter():
    meta = _front_matter((APP / "README.md").read_text(encoding="utf-8"))
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and (APP / meta["app_file"]).is_file()
    assert len(meta["short_description"]) <= 60 and meta["title"] and meta["license"]
    gradio = pytest.importorskip("gradio")
    assert meta["sdk_version"] == gradio.__version__, "app/README.md: set sdk_version to the Gradio the tests use"


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return cfg


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_space_requirements_are_the_package_dependencies():
    """The Space installs what the humocon_hf code it carries needs: setup.cfg's install_requires, no more, no less."""
    wanted = _lines(_setup_cfg()["options"]["install_requires"])
    assert _lines((APP / "requirements.txt").read_text()) == wanted


def test_space_packages_are_setup_cfg_packages():
    assert list(SPACE_PACKAGES) == _lines(_setup_cfg()["options"]["packages"])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, smollm2_tokenizer_dir):
    """A tiny checkpoint with what a `humocon demo` folder also holds beside it: a run record with local paths,
    training stages, previews, a model card."""
    from humocon_tiny import build_tiny_checkpoint

    ckpt = build_tiny_checkpoint(tmp_path_factory.mktemp("space"), smollm2_tokenizer_dir)
    (ckpt / "results.json").write_text('{"output_dir": "/home/someone/humocon_demo"}')
    (ckpt / "stages" / "tune").mkdir(parents=True)
    (ckpt / "stages" / "tune" / "model.safetensors").write_bytes(b"stage weights")
    for name in ("preview.gif", "concept_timeline.png", "README.md", "concepts.json"):
        (ckpt / name).write_bytes(b"x")
    return ckpt


def test_push_space_uploads_the_app_its_code_and_the_served_checkpoint_only(fake_hub, checkpoint):
    push_space("org/humocon-space", checkpoint)
    assert fake_hub.repos == [("org/humocon-space", {"private": None, "token": None, "exist_ok": True,
                                                      "repo_type": "space", "space_sdk": "gradio"})]
    (commit,) = fake_hub.commits
    assert commit["repo_type"] == "space"
    files = commit["files"]
    served = sorted(p.name for p in checkpoint.iterdir() if p.is_file() and p.suffix != ".py")
    for left_out in ("results.json", "preview.gif", "concept_timeline.png", "README.md", "concepts.json"):
        served.remove(left_out)
    assert "model.safetensors" in served and "config.json" in served and "humocon_chat.json" in served
    examples = sorted(p.name for p in (APP / "examples").iterdir())
    assert sorted(n for n in files if not n.startswith("humocon_hf/")) == sorted(
        ["README.md", "app.py", "requirements.txt", *(f"examples/{n}" for n in examples),
         *(f"{SPACE_MODEL_DIR}/{n}" for n in served)])
    assert files["app.py"] == (APP / "app.py").read_bytes()
    # The package as installed: the top-level modeling / processing / training folders become sub-packages.
    code = {n for n in files if n.startswith("humocon_hf/")}
    for module in ("humocon_hf/__init__.py", "humocon_hf/inference.py", "humocon_hf/pipeline/reporting.py",
                   "humocon_hf/modeling/modeling_humocon.py", "humocon_hf/processing/bvh_reader.py",
                   "humocon_hf/training/__init__.py", "humocon_hf/recipes/small.yaml",
                   "humocon_hf/templates/README.md.jinja"):
        assert module in code, module
    assert all(Path(n).suffix in {".py", ".json", ".jinja", ".yaml", ".md"} and "__pycache__" not in n for n in code)
    assert not any(b"/home/someone" in data for data in files.values())


def test_push_space_refuses_links_and_folders_that_are_not_checkpoints(fake_hub, checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        push_space("org/space", tmp_path)
    linked = tmp_path / "linked"
    linked.mkdir()
    for path in checkpoint.iterdir():
        if path.is_file():
            (linked / path.name).write_bytes(path.read_bytes())
    (linked / "tokenizer.json").unlink()
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the Hub")
    (linked / "tokenizer.json").symlink_to(secret)
    with pytest.raises(ValueError, match="symbolic link"):
        push_space("org/space", linked)
    with pytest.raises(FileNotFoundError, match="no app.py"):
        push_space("org/space", checkpoint, app_dir=tmp_path)
    with pytest.raises(ValueError, match="org/name"):
        push_space("not a repo id", checkpoint)
    assert fake_hub.commits == []


def test_the_uploaded_space_starts_the_app_on_its_own_code_and_checkpoint(checkpoint, tmp_path):
    """The uploaded files, laid out as the Space's repository, run: app.py imports the humocon_hf code beside it
    (not this checkout's), loads ./humocon_demo by default, analyses a bundled example and answers about it."""
    space = tmp_path / "space"
    for name, path in space_files(checkpoint).items():
        (space / name).parent.mkdir(parents=True, exist_ok=True)
        (space / name).write_bytes(path.read_bytes())
    script = (
        "import app, humocon_hf, humocon_hf.modeling\n"
        "demo = app.build_app(app.DEFAULT_MODEL, device='cpu')\n"
        "example = sorted(app.EXAMPLES_DIR.glob('*.bvh'))[0]\n"
        "gif, timeline, summary = demo.humocon_chat.analyze(str(example))\n"
        "history = list(demo.humocon_chat.ask(str(example), None, 'What is the person doing?', []))[-1]\n"
        "print(humocon_hf.__file__, humocon_hf.modeling.__file__, 'humocon-timeline' in timeline, history[0]['role'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HUMOCON_MODEL")}
    out = subprocess.run([sys.executable, "-c", script], cwd=space, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    package, modeling, has_timeline, role = out.stdout.split()[-4:]
    assert Path(package).resolve().parent == (space / "humocon_hf").resolve()
    assert Path(modeling).resolve().parent == (space / "humocon_hf" / "modeling").resolve()
    assert has_timeline == "True" and role == "user"


def test_push_space_command(fake_hub, checkpoint, capsys):
    """`humocon push-space` is push_space with the CLI's conventions: one commit, a clear error for a bad id."""
    from humocon_hf.cli import main

    assert main(["push-space", "--repo-id", "org/humocon-space", "--model", str(checkpoint)]) == 0
    assert "org/humocon-space: fake://commit" in capsys.readouterr().out
    (commit,) = fake_hub.commits
    assert main(["push-space", "--repo-id", "not a repo id", "--model", str(checkpoint)]) == 2
    assert "repo_id must be an 'org/name' string" in capsys.readouterr().err
