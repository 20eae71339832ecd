"""Test-wide setup: offline Hub, a throw-away HF cache, and the shared real data."""

import os
import tempfile
from pathlib import Path

import pytest

# Set before transformers / huggingface_hub are imported anywhere, so no test ever reaches the network.
_HF_HOME = tempfile.mkdtemp(prefix="humocon-test-hf-home-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HOME"] = _HF_HOME
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HUMOCON_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (../shared/data); tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder not found at {SHARED_DATA} (set HUMOCON_SHARED_DATA)")
    return SHARED_DATA
