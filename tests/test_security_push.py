"""What a push uploads (issue 29, security and privacy): `humocon push-dataset --local-dir D` uploads only the files
it wrote and never writes into a folder of the user's; no local path (a sub-config's `_name_or_path`, a fine-tuning
card's folders and command) reaches a pushed file. The Hub is a fake `HfApi` that records every uploaded file."""

import json
import os

import pytest
import torch
from humocon_tiny import tiny_config

from humocon_hf.hub import benchmark_files, push_benchmark, push_to_hub, save_for_remote_code
from humocon_hf.modeling.modeling_humocon import HuMoConForCausalLM

torch.set_num_threads(1)

SMALL = ["--override", "data.num_train_motions=4", "--override", "data.extra_train_motions=0",
         "--override", "data.num_validation_motions=1", "--override", "data.num_test_motions=2", "--override", "data.vocabulary_clips_per_kind=0", "--override", "data.real_sequences=0",
         "--override", "data.max_frames=64", "--override", "data.questions_per_motion=1"]


def _texts(files: dict[str, bytes]) -> dict[str, str]:
    out = {}
    for name, data in files.items():
        try:
            out[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return out


# ------------------------------------------------------------------------------------------ push-dataset


def test_push_dataset_never_writes_into_or_uploads_a_folder_of_the_users(tmp_path, fake_hub, capsys):
    from humocon_hf.cli import main

    mine = tmp_path / "my-project"
    mine.mkdir()
    (mine / "README.md").write_text("# my own notes\n")
    (mine / ".env").write_text("HF_TOKEN=hf_secret\n")
    key = tmp_path / "id_rsa"
    key.write_text("PRIVATE KEY")
    (mine / "key.pem").symlink_to(key)
    assert main(["push-dataset", "--repo-id", "org/bench", "--local-dir", str(mine), *SMALL]) == 2
    assert "not empty and was not written by export_benchmark" in capsys.readouterr().err
    assert (mine / "README.md").read_text() == "# my own notes\n"
    assert sorted(p.name for p in mine.iterdir()) == [".env", "README.md", "key.pem"]
    assert fake_hub.uploads == []


def test_push_dataset_uploads_only_the_files_it_wrote(tmp_path, fake_hub):
    from humocon_hf.cli import main

    folder = tmp_path / "bench"
    assert main(["push-dataset", "--local-dir", str(folder), *SMALL]) == 0
    written = benchmark_files(folder)
    assert "README.md" in written and "questions/test-00000-of-00001.parquet" in written
    # The user then adds files of their own to the folder, and a link to a secret.
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    (folder / ".env").write_text("HF_TOKEN=hf_secret\n")
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.txt").write_text("private")
    (folder / "questions" / "extra-00000-of-00001.parquet").symlink_to(secret)
    (folder / "key.pem").symlink_to(secret)
    # Exporting again into it is fine (it was written by export_benchmark) and leaves the user's files alone.
    assert main(["push-dataset", "--repo-id", "org/bench", "--local-dir", str(folder), *SMALL]) == 0
    (uploaded,) = fake_hub.uploads
    assert sorted(uploaded) == sorted(written)
    assert all(b"PRIVATE KEY" not in data and b"hf_secret" not in data for data in uploaded.values())
    assert (folder / ".env").is_file() and (folder / "notes" / "todo.txt").is_file()

    # A file it wrote that has become a symbolic link is refused, not followed.
    readme = folder / "README.md"
    readme.unlink()
    readme.symlink_to(secret)
    with pytest.raises(ValueError, match="symbolic link"):
        push_benchmark("org/bench", folder)
    readme.unlink()
    readme.write_text("# card\n")
    questions = folder / "questions"
    questions.rename(tmp_path / "moved")
    questions.symlink_to(tmp_path / "moved")
    with pytest.raises(ValueError, match="symbolic link"):
        push_benchmark("org/bench", folder)
    # A manifest naming other files is refused too.
    questions.unlink()
    (tmp_path / "moved").rename(questions)
    (folder / ".humocon-benchmark.json").write_text(json.dumps({"files": ["README.md", "../id_rsa", ".env"]}))
    with pytest.raises(ValueError, match="not a file export_benchmark writes"):
        push_benchmark("org/bench", folder)
    assert len(fake_hub.uploads) == 1


def test_push_benchmark_refuses_a_folder_export_benchmark_did_not_write(tmp_path, fake_hub):
    folder = tmp_path / "handmade"
    (folder / "questions").mkdir(parents=True)
    (folder / "README.md").write_text("---\n---\n")
    (folder / "questions" / "test-00000-of-00001.parquet").write_bytes(b"PAR1")
    (folder / ".env").write_text("HF_TOKEN=hf_secret\n")
    with pytest.raises(FileNotFoundError, match="not a benchmark folder written by export_benchmark"):
        push_benchmark("org/bench", folder)
    assert fake_hub.uploads == []


def test_export_benchmark_does_not_write_through_a_symbolic_link(tmp_path, fake_hub):
    """An export into its own earlier folder replaces a link where one of its files was; the link's target is not
    touched."""
    from humocon_hf.cli import main

    folder = tmp_path / "bench"
    assert main(["push-dataset", "--local-dir", str(folder), *SMALL]) == 0
    target = tmp_path / "bashrc"
    target.write_text("export PATH=...\n")
    (folder / "README.md").unlink()
    (folder / "README.md").symlink_to(target)
    assert main(["push-dataset", "--local-dir", str(folder), *SMALL]) == 0
    assert target.read_text() == "export PATH=...\n"
    assert not (folder / "README.md").is_symlink() and "HuMoCon" in (folder / "README.md").read_text()


# ------------------------------------------------------------------------------------------ local paths


def _model_with_local_names(tmp_path) -> HuMoConForCausalLM:
    torch.manual_seed(0)
    config = tiny_config()
    for sub, name in ((config.text_config, "llm"), (config.motion_config, "motion"), (config.video_config, "video")):
        (tmp_path / "home" / "alice" / name).mkdir(parents=True)
        sub._name_or_path = str(tmp_path / "home" / "alice" / name)
    vision = getattr(config.video_config, "vision_config", None)
    if vision is not None:
        vision._name_or_path = str(tmp_path / "home" / "alice" / "siglip")
    config._name_or_path = str(tmp_path / "home" / "alice" / "checkpoint")
    return HuMoConForCausalLM(config).eval()


@pytest.mark.parametrize("remote_code", [True, False])
def test_pushed_files_name_no_local_path(tmp_path, fake_hub, remote_code):
    model = _model_with_local_names(tmp_path)
    before = model.config.text_config._name_or_path
    push_to_hub(model, "org/humocon", remote_code=remote_code)
    (uploaded,) = fake_hub.uploads
    texts = _texts(uploaded)
    assert "config.json" in texts and "README.md" in texts
    for name, text in texts.items():
        assert str(tmp_path) not in text and "alice" not in text, (name, [ln for ln in text.splitlines()
                                                                           if "alice" in ln][:3])
    assert model.config.text_config._name_or_path == before  # the model in memory keeps its names


def test_save_for_remote_code_keeps_hub_ids_and_drops_local_paths(tmp_path):
    model = _model_with_local_names(tmp_path)
    model.config.text_config._name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    save_for_remote_code(model, tmp_path / "out")
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["text_config"]["_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert str(tmp_path) not in (tmp_path / "out" / "config.json").read_text()


def test_the_finetune_card_names_no_local_path(tmp_path):
    from conftest import parse_card_metadata

    from humocon_hf.finetune import _card, card_base_model, finetuned_name

    home = tmp_path / "home" / "alice"
    source, out = home / "runs" / "humocon_demo", home / "runs" / "ft"
    source.mkdir(parents=True)
    info = {"name": finetuned_name(str(source), home / "qa.jsonl"), "source": str(source),
            "base_model": card_base_model(str(source), {}), "train_data": str(home / "qa.jsonl"),
            "eval_data": str(home / "eval.jsonl"), "output_dir": str(out), "train_rows": 12, "steps": 30,
            "train_projectors": True, "plan": {"epochs": 3, "rows": 12, "batch": 2},
            "command": f"humocon finetune --model {source} --data {home}/qa.jsonl --eval-data={home}/eval.jsonl "
                       f"--output-dir '{out}' --override model.llm_name_or_path={home}/llm",
            "eval_before": {"accuracy": 0.25, "questions": 4}, "eval_after": {"accuracy": 0.5, "questions": 4}}
    card = _card(info)
    assert str(tmp_path) not in card and "alice" not in card, card
    assert "humocon_demo" in card and "qa.jsonl" in card and 'from_pretrained("your-org/' in card
    assert "base_model" not in parse_card_metadata(card)  # a local folder is no Hub base model
    hub = _card(dict(info, source="org/humocon", base_model=card_base_model("org/humocon", {}), command=None,
                     eval_after=None))
    assert parse_card_metadata(hub)["base_model"] == "org/humocon" and "alice" not in hub


def test_the_model_card_names_no_local_path(tmp_path):
    from conftest import parse_card_metadata

    from humocon_hf.model_card import public_command, render_model_card

    llm = tmp_path / "home" / "alice" / "llm"
    llm.mkdir(parents=True)
    command = f"humocon demo --output-dir {tmp_path}/home/alice/out --override model.llm_name_or_path={llm}"
    card = render_model_card(None, command=command, base_model=str(llm), model_name="m")
    assert str(tmp_path) not in card and "alice" not in card
    assert "base_model" not in parse_card_metadata(card)
    assert "humocon demo --output-dir out --override model.llm_name_or_path=llm" in card
    assert public_command("humocon ask --model runs/x 'What is it?'") == "humocon ask --model runs/x 'What is it?'"
    hub = render_model_card(None, base_model="meta-llama/Llama-3.1-8B-Instruct", model_name="m")
    assert parse_card_metadata(hub)["base_model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert os.sep in str(llm)
