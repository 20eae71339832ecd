"""Stage-1 training: collator, Trainer (component logs, accumulation, codebook sync), recipe, real-data overfit, DDP."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import accelerate_launch_command
from transformers import TrainingArguments

from humocon_hf.modeling.configuration_humocon_encoders import (
    HuMoConConceptDiscoveryConfig,
)
from humocon_hf.modeling.modeling_humocon_concept_discovery import LOSS_COMPONENTS, HuMoConForConceptDiscovery
from humocon_hf.training.concept_discovery import (
    ConceptDiscoveryCollator,
    ConceptDiscoverySchedule,
    ConceptDiscoveryTrainer,
    log_history_components,
)

FIXTURES = Path(__file__).parent / "fixtures"
CMU_TRIALS = (
    "02_01",
    "09_01",
    "13_11",
    "16_01",
)  # walk, run, jump, forward jump (raw amc2bvh rig)


pytestmark = pytest.mark.usefixtures("one_thread")


def synthetic_items(n, seed=0, frames=24, kinds=("paired",)):
    g = np.random.default_rng(seed)
    items = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        item = {}
        if kind in ("paired", "motion"):
            item["motion_values"] = g.standard_normal((frames, 137)).astype("float32")
        if kind in ("paired", "video"):
            item["pixel_values_videos"] = g.standard_normal((4, 3, 32, 32)).astype(
                "float32"
            )
            item["video_timestamps"] = np.array([0.1, 0.3, 0.5, 0.7], "float32")
            item["video_flow"] = g.standard_normal((3, 2, 4, 4)).astype("float32")
        items.append(item)
    return items


def no_mask_config(**kwargs):
    # Random token masking draws depend on the micro-batch layout; equivalence tests switch it off.
    return HuMoConConceptDiscoveryConfig.small(
        motion_config={"mask_ratio": 0.0}, video_config={"mask_ratio": 0.0}, **kwargs
    )


def train(
    tmp_path, model, items, batch, accumulation=1, steps=3, logging_steps=1, **kwargs
):
    args = TrainingArguments(
        str(tmp_path),
        max_steps=steps,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=accumulation,
        logging_steps=logging_steps,
        learning_rate=1e-3,
        report_to="none",
        save_strategy="no",
        seed=0,
        use_cpu=True,
        dataloader_drop_last=True,
        **kwargs,
    )
    trainer = ConceptDiscoveryTrainer(
        model=model,
        args=args,
        train_dataset=items,
        data_collator=ConceptDiscoveryCollator(),
    )
    trainer.train()
    return trainer


# ------------------------------------------------------------------------------------------------ collator


def test_collator_mixed_batch_pairs_and_padding():
    items = synthetic_items(6, kinds=("paired", "motion", "video"))
    items[1]["motion_values"] = items[1]["motion_values"][:10]
    batch = ConceptDiscoveryCollator()(items)
    assert batch["motion_values"].shape == (4, 24, 137)
    assert batch["motion_attention_mask"].sum(-1).tolist() == [24, 10, 24, 24]
    assert batch["pixel_values_videos"].shape == (4, 4, 3, 32, 32)
    assert batch["video_flow"].shape == (4, 3, 2, 4, 4)
    # items 0 and 3 are paired: motion rows 0 and 2, video rows 0 and 2
    assert batch["paired"].tolist() == [[0, 0], [2, 2]]
    motion_only = ConceptDiscoveryCollator(modalities=("motion",))(synthetic_items(2))
    assert "pixel_values_videos" not in motion_only and "paired" not in motion_only
    unpaired = synthetic_items(2)
    unpaired[0]["paired"] = False
    assert ConceptDiscoveryCollator()(unpaired)["paired"].tolist() == [[1, 1]]


def test_collator_errors():
    collator = ConceptDiscoveryCollator()
    with pytest.raises(ValueError, match="empty batch"):
        collator([])
    with pytest.raises(ValueError, match="no motion or video input"):
        collator([{"text": "hi"}])
    with pytest.raises(ValueError, match="no feature_extractor"):
        collator([{"motion": np.zeros((10, 22, 3))}])
    with pytest.raises(ValueError, match="share a shape"):
        items = synthetic_items(2, kinds=("video",))
        items[1]["pixel_values_videos"] = items[1]["pixel_values_videos"][:3]
        collator(items)
    with pytest.raises(ValueError, match="subset"):
        ConceptDiscoveryCollator(modalities=("audio",))


def test_collator_with_real_processors(shared_data):
    from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
    from humocon_hf.processing.motion_io import load_motion
    from humocon_hf.processing.rendering import render_motion
    from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor

    joints = load_motion(shared_data / "cmu_bvh" / "02_01.bvh").joints[:40]
    collator = ConceptDiscoveryCollator(
        feature_extractor=MotionFeatureExtractor(),
        video_processor=HuMoConVideoProcessor(num_frames=4, size=32, patch_size=8),
    )
    batch = collator(
        [
            {
                "motion": joints,
                "video": render_motion(joints, size=32),
                "video_fps": 20.0,
            },
            {"motion": joints[:20]},
        ]
    )
    assert (
        batch["motion_values"].shape == (2, 40, 137)
        and batch["motion_attention_mask"][1].sum() == 20
    )
    assert batch["pixel_values_videos"].shape == (1, 4, 3, 32, 32) and batch[
        "video_flow"
    ].shape == (1, 3, 2, 4, 4)
    assert batch["paired"].tolist() == [[0, 0]]
    model = HuMoConForConceptDiscovery(HuMoConConceptDiscoveryConfig.small())
    out = model(**batch)
    assert all(getattr(out, name) is not None for name in LOSS_COMPONENTS)
    collator.max_frames = 16
    assert collator([{"motion": joints}])["motion_values"].shape == (1, 16, 137)
    # A paired clip longer than max_frames: the video is cut to the truncated motion's 0.8 s, so the pair stays
    # aligned and the model trains on it (before: "paired video has a key frame at 1.9 s but its motion lasts 0.8 s").
    long_video = render_motion(joints, size=32)
    paired = collator([{"motion": joints, "video": long_video, "video_fps": 20.0}])
    assert paired["video_timestamps"].max() < 16 / 20.0
    assert all(getattr(model(**paired), name) is not None for name in LOSS_COMPONENTS)
    unpaired = collator([{"motion": joints, "video": long_video, "video_fps": 20.0, "paired": False}])
    assert unpaired["video_timestamps"].max() > 1.5  # an unpaired video keeps its length


# ------------------------------------------------------------------------------------------------ trainer


def test_gradient_accumulation_matches_big_batch(tmp_path):
    """batch 4 x accumulation 2 == batch 8: same logged loss, components and grad norm, same weights and codebooks."""
    items = synthetic_items(16)
    torch.manual_seed(0)
    big = HuMoConForConceptDiscovery(no_mask_config())
    small = HuMoConForConceptDiscovery(no_mask_config())
    small.load_state_dict(big.state_dict())
    h_big = train(tmp_path / "a", big, items, batch=8).state.log_history
    h_acc = train(
        tmp_path / "b", small, items, batch=4, accumulation=2
    ).state.log_history
    logs_big = [h for h in h_big if "loss" in h]
    logs_acc = [h for h in h_acc if "loss" in h]
    assert len(logs_big) == len(logs_acc) == 3
    for a, b in zip(logs_big, logs_acc):
        for key in ("loss", "grad_norm", *LOSS_COMPONENTS):
            assert a[key] == pytest.approx(b[key], rel=1e-4), key
    for (name, p), q in zip(big.state_dict().items(), small.state_dict().values()):
        assert torch.allclose(p.float(), q.float(), atol=1e-4, rtol=1e-3), name
    assert (
        big.motion_encoder.quantizer.num_updates.item()
        == small.motion_encoder.quantizer.num_updates.item()
        == 3
    )
    assert (
        big._update_in_forward
    )  # the Trainer restores per-forward updates for plain loops afterwards


def test_trainer_logs_components_for_mixed_modalities(tmp_path):
    items = synthetic_items(12, kinds=("paired", "motion", "video"))
    torch.manual_seed(0)
    model = HuMoConForConceptDiscovery(HuMoConConceptDiscoveryConfig.small())
    trainer = train(
        tmp_path,
        model,
        items,
        batch=3,
        steps=2,
        logging_steps=2,
        per_device_eval_batch_size=3,
    )
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 1
    for name in LOSS_COMPONENTS:
        assert np.isfinite(logs[0][name]), name
    assert logs[0]["loss"] > 0
    # evaluation runs under no_grad; the velocity objective still evaluates (torch.enable_grad inside)
    metrics = trainer.evaluate(eval_dataset=items[:6])
    assert np.isfinite(metrics["eval_loss"]), metrics


def test_trainer_rejects_other_models(tmp_path):
    args = TrainingArguments(str(tmp_path), report_to="none", use_cpu=True)
    with pytest.raises(ValueError, match="HuMoConForConceptDiscovery"):
        ConceptDiscoveryTrainer(model=torch.nn.Linear(2, 2), args=args)


# ------------------------------------------------------------------------------------------------ recipe


def test_recipe_two_phases_and_resume(tmp_path):
    items = synthetic_items(8, kinds=("paired", "motion", "video"))
    torch.manual_seed(0)
    model = HuMoConForConceptDiscovery(HuMoConConceptDiscoveryConfig.small())
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = ConceptDiscoverySchedule(
        str(tmp_path / "run"),
        phase1_steps=2,
        phase2_steps=4,
        per_device_train_batch_size=2,
        logging_steps=1,
        save_steps=2,
        training_args={"use_cpu": True, "seed": 0},
    )
    assert (
        recipe.training_arguments(1).learning_rate == 1e-4
        and recipe.training_arguments(2).learning_rate == 1e-5
    )
    results = recipe.run(model, items)
    phase1 = log_history_components(results["phase1"]["log_history"])
    phase2 = log_history_components(results["phase2"]["log_history"])
    # phase 1: motion reconstruction (+ commitment) only
    assert set(phase1) == {"loss", "loss_rec_motion", "loss_commit"}
    assert set(phase2) == {"loss", *LOSS_COMPONENTS}
    p1 = HuMoConForConceptDiscovery.from_pretrained(
        tmp_path / "run" / "phase1" / "final"
    ).state_dict()
    changed1 = {k.split(".")[0] for k in initial if not torch.equal(initial[k], p1[k])}
    assert changed1 == {"motion_encoder", "motion_decoder"}
    final = {k: v.clone() for k, v in model.state_dict().items()}
    changed2 = {k.split(".")[0] for k in p1 if not torch.equal(p1[k], final[k])}
    assert {
        "video_encoder",
        "motion_hyper_network",
        "video_velocity_decoder",
        "video_alignment_projector",
    } <= changed2
    assert all(
        torch.equal(initial[k], final[k]) for k in initial if ".vision_tower." in k
    )  # frozen tower
    assert (
        model.config.use_discriminative and model.config.use_alignment
    )  # switches restored after phase 1

    # Interrupt phase 2 after its step-2 checkpoint and rerun: phase 1 is skipped, phase 2 resumes at step 2 and
    # ends with the same weights as the uninterrupted run.
    shutil.rmtree(tmp_path / "run" / "phase2" / "final")
    shutil.rmtree(tmp_path / "run" / "phase2" / "checkpoint-4")
    # A kill -9 during the step-4 save leaves a half-written folder (no trainer_state.json, which is written last):
    # it is removed and the run resumes from the last whole checkpoint.
    (tmp_path / "run" / "phase2" / "checkpoint-4").mkdir()
    (tmp_path / "run" / "phase2" / "checkpoint-4" / "model.safetensors").write_bytes(b"\0" * 100)
    torch.manual_seed(0)
    fresh = HuMoConForConceptDiscovery(HuMoConConceptDiscoveryConfig.small())
    again = recipe.run(fresh, items)
    assert "skipped" in again["phase1"]
    assert again["phase2"]["resumed_from"].endswith("checkpoint-2")
    for key, value in fresh.state_dict().items():
        assert torch.allclose(value.float(), final[key].float(), atol=1e-6), key


# ------------------------------------------------------------------------------------------------ real data


def test_small_model_overfits_real_cmu_trials(shared_data, tmp_path):
    """Every loss component goes down when a small model trains on 4 real CMU trials and their renderings."""
    from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
    from humocon_hf.processing.motion_io import load_motion
    from humocon_hf.processing.rendering import render_motion
    from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor

    items = []
    for trial in CMU_TRIALS:
        clip = load_motion(shared_data / "cmu_bvh" / f"{trial}.bvh")
        joints = clip.joints[:48]
        items.append(
            {
                "motion": joints,
                "video": render_motion(joints, size=32, fps=clip.fps),
                "video_fps": clip.fps,
            }
        )
    collator = ConceptDiscoveryCollator(
        feature_extractor=MotionFeatureExtractor(),
        video_processor=HuMoConVideoProcessor(num_frames=4, size=32, patch_size=8),
    )
    batch = collator(items)
    assert batch["motion_attention_mask"].sum(-1).tolist() == [48, 25, 48, 48]

    torch.manual_seed(0)
    model = HuMoConForConceptDiscovery(HuMoConConceptDiscoveryConfig.small())
    args = TrainingArguments(
        str(tmp_path),
        max_steps=60,
        per_device_train_batch_size=4,
        logging_steps=1,
        learning_rate=2e-3,
        warmup_steps=5,
        report_to="none",
        save_strategy="no",
        seed=0,
        use_cpu=True,
    )
    trainer = ConceptDiscoveryTrainer(
        model=model, args=args, train_dataset=items, data_collator=collator
    )
    trainer.train()
    curves = log_history_components(trainer.state.log_history)
    for name in ("loss", *LOSS_COMPONENTS):
        values = curves[name]
        assert len(values) == 60, name
        first, last = np.mean(values[:5]), np.mean(values[-5:])
        assert last < first, f"{name} did not go down: {first:.4f} -> {last:.4f}"
    assert np.mean(curves["loss_rec_motion"][-5:]) < 0.3 * np.mean(
        curves["loss_rec_motion"][:5]
    )
    assert np.mean(curves["loss_align"][-5:]) < 0.5 * np.mean(curves["loss_align"][:5])
    concepts = model.get_concepts(
        motion_values=batch["motion_values"],
        motion_attention_mask=batch["motion_attention_mask"],
    )
    assert [len(c["frame_concept_ids"]) for c in concepts["motion"]] == [48, 25, 48, 48]


# ------------------------------------------------------------------------------------------------ DDP


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["trainer", "recipe"])
def test_two_processes_match_one_process(tmp_path, mode):
    """`accelerate launch` with 2 CPU processes (gloo, DDP, double backward) at per-device batch 2 gives the same
    logs and weights as 1 process at batch 4 — for the Trainer, and for both phases of the recipe."""
    script = FIXTURES / "concept_discovery_ddp.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    results = {}
    for n_proc, per_device in ((1, 4), (2, 2)):
        out = tmp_path / f"world{n_proc}.json"
        cmd = accelerate_launch_command(n_proc, str(script), str(out), str(per_device), "3", mode,
                                        port=29500 + os.getpid() % 1000 if n_proc > 1 else None)
        proc = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        results[n_proc] = json.loads(out.read_text())
    one, two = results[1], results[2]
    assert one["world_size"] == 1 and two["world_size"] == 2
    assert (
        len(one["log_history"])
        == len(two["log_history"])
        == (3 if mode == "trainer" else 6)
    )
    for a, b in zip(one["log_history"], two["log_history"]):
        assert set(a) == set(b)
        for key in ("loss", "grad_norm", *LOSS_COMPONENTS):
            if key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-4), key
    for key, value in one["param_abs_sums"].items():
        assert value == pytest.approx(two["param_abs_sums"][key], rel=1e-3, abs=1e-4), (
            key
        )
        assert one["param_sums"][key] == pytest.approx(
            two["param_sums"][key], rel=1e-2, abs=1e-2
        ), key


def test_last_complete_checkpoint_skips_half_written_saves(tmp_path, caplog):
    from humocon_hf.training.checkpoints import last_complete_checkpoint

    assert last_complete_checkpoint(tmp_path / "missing") is None
    for step, whole in ((2, True), (10, True), (12, False), (9, True)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"x")
        if whole:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-99.txt").write_text("not a folder")
    assert last_complete_checkpoint(tmp_path, remove_incomplete=False) == str(tmp_path / "checkpoint-10")
    assert (tmp_path / "checkpoint-12").is_dir()
    with caplog.at_level("WARNING"):
        assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert not (tmp_path / "checkpoint-12").exists() and "killed while saving" in caplog.text
