"""Concepts in words: `describe_concepts` measures what the frames of each concept do (which body part moves and
how), the demo stores the words in the checkpoint's config, and timelines / `humocon ask --concepts` show them."""

from pathlib import Path

import numpy as np
import pytest
import torch

from humocon_hf.concepts import concept_labels, describe_concepts, plot_concept_timeline
from humocon_hf.data.procedural import MotionSpec, SegmentSpec, generate_motion
from humocon_hf.modeling.configuration_humocon_encoders import (
    HuMoConConceptDiscoveryConfig,
    HuMoConMotionEncoderConfig,
)
from humocon_hf.modeling.modeling_humocon_concept_discovery import HuMoConForConceptDiscovery
from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor


def _walk(frames=80):
    joints, _ = generate_motion(np.random.default_rng(0), MotionSpec([SegmentSpec("walk", "forward", duration=4.0)],
                                                                     heading=0.0), max_frames=frames)
    return joints[:frames].astype(np.float32)


def _left_arm_raise(frames=40):
    """A standing body (facing +Z, left = +X) whose left arm alone swings up sideways, 0 -> 150 degrees in 2 s."""
    rest = np.repeat(_walk()[:1], frames, axis=0)
    rest[:, :, [0, 2]] = rest[:1, :, [0, 2]]  # no travel
    shoulder = rest[:, 16].copy()
    out = rest.copy()
    for t, angle in enumerate(np.linspace(0.0, np.radians(150), frames)):
        c, s = np.cos(angle), np.sin(angle)
        rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # about +Z: a hanging arm goes to +X and up
        for j in (18, 20):
            hanging = rest[0, j] - rest[0, 16]
            hanging = np.array([0.0, -np.linalg.norm(hanging), 0.0]) if j == 20 else hanging * [0, 1, 0]
            out[t, j] = shoulder[t] + rot @ hanging
    return out.astype(np.float32)


@pytest.fixture(scope="module")
def encoder_and_extractor():
    torch.manual_seed(0)
    model = HuMoConForConceptDiscovery(HuMoConConceptDiscoveryConfig.small()).eval()
    fe = MotionFeatureExtractor()
    fe.fit_normalization([_walk(), _left_arm_raise()])
    return model.motion_encoder, fe


def test_a_motion_that_only_raises_the_left_arm_gets_a_left_arm_concept(encoder_and_extractor):
    """A concept names the limb and what it does ("one arm raising"); the side is read from the clip each segment
    covers (`segment_words`), never claimed by the code: codes trained on both sides cover either."""
    from humocon_hf.concepts import segment_words
    from humocon_hf.processing.smpl22 import mirror_joints

    encoder, fe = encoder_and_extractor
    raise_left = _left_arm_raise()
    raised = describe_concepts(encoder, fe, [raise_left], ["a person raises the left arm"])
    # The (untrained) encoder splits the frames among concepts arbitrarily; every concept must name one arm only, and
    # the one covering most frames the raise.
    assert raised and all(d["description"].startswith("one arm") for d in raised.values()), raised
    assert max(raised.values(), key=lambda d: d["frames"])["description"] in ("one arm raising", "one arm raised"), raised
    first = next(iter(raised.values()))
    assert first["captions"] == ["a person raises the left arm"]
    assert first["part_speed"]["left arm"] > 0.3 > first["part_speed"]["right arm"]
    words = {k: v["description"] for k, v in raised.items()}
    whole = [(0, len(raise_left), max(raised, key=lambda k: raised[k]["frames"]))]
    assert segment_words(raise_left, whole, words)[0].startswith("left arm ")
    assert segment_words(mirror_joints(raise_left), whole, words)[0].startswith("right arm ")

    mirrored = describe_concepts(encoder, fe, [mirror_joints(raise_left)])
    assert mirrored and all(d["description"].startswith("one arm") for d in mirrored.values()), mirrored
    assert max(mirrored.values(), key=lambda d: d["frames"])["description"] in ("one arm raising", "one arm raised"), \
        mirrored


def test_walking_and_standing_still_are_told_apart(encoder_and_extractor):
    encoder, fe = encoder_and_extractor
    walk = describe_concepts(encoder, fe, [_walk()])
    words = " ".join(d["description"] for d in walk.values())
    assert "stepping" in words and "travelling" in words, walk
    still = describe_concepts(encoder, fe, [np.repeat(_walk()[:1], 40, axis=0)])
    assert {d["description"] for d in still.values()} == {"holding still"}
    with pytest.raises(ValueError, match="2 captions for 1 motions"):
        describe_concepts(encoder, fe, [_walk()], ["a", "b"])


def test_descriptions_travel_in_the_config_and_label_the_timeline(tmp_path):
    config = HuMoConMotionEncoderConfig(concept_descriptions={3: "left arm raising", "7": "holding still"})
    config.save_pretrained(tmp_path)
    loaded = HuMoConMotionEncoderConfig.from_pretrained(tmp_path)
    assert concept_labels(loaded.concept_descriptions) == {3: "left arm raising", 7: "holding still"}
    from huggingface_hub.errors import StrictDataclassError

    with pytest.raises(StrictDataclassError, match="concept_descriptions"):  # the config's `@strict` validation
        HuMoConMotionEncoderConfig(concept_descriptions={"x": "y"})
    plain = plot_concept_timeline([(0, 40, 3), (40, 60, 7)], tmp_path / "plain.png")
    named = plot_concept_timeline([(0, 40, 3), (40, 60, 7)], tmp_path / "named.png",
                                  descriptions=loaded.concept_descriptions)
    import imageio.v2 as imageio

    # The described plot is taller: it lists "3: left arm raising" and "7: holding still" under the timeline.
    assert imageio.imread(named).shape[0] > imageio.imread(plain).shape[0]


class _OneCodeEncoder:
    """Stands in for a trained encoder whose code 0 covers every frame: a code shared by left and right waves, or by
    standing and swaying frames, as trained codebooks have (issue 30)."""

    device, dtype = torch.device("cpu"), torch.float32

    def get_concepts(self, values, mask):
        out = []
        for row in mask:
            frames = int(row.sum())
            out.append({"frame_concept_ids": torch.zeros(frames, dtype=torch.long), "segments": [(0, frames, 0)]})
        return out


def _sway(frames=80, amplitude=0.2, hz=1.0):
    """Standing, the pelvis (and the whole body) swaying forward and back: a kick's or a reach's lunge, no travel."""
    still = np.repeat(_walk()[:1], frames, axis=0)
    still[:, :, [0, 2]] = still[:1, :, [0, 2]]
    offset = amplitude * np.sin(2 * np.pi * hz * np.arange(frames) / 20.0)
    still[:, :, 2] += offset[:, None]
    return still.astype(np.float32)


def test_a_code_shared_by_left_and_right_raises_leaves_the_side_to_each_clip(encoder_and_extractor):
    """Averaged over a code's frames, a left and a right raise read "holding still" (each arm at half its speed); the
    words now say what the frames agree on ("one arm") and each clip's timeline names its own side."""
    from humocon_hf.concepts import concept_word_accuracy, segment_words
    from humocon_hf.processing.smpl22 import mirror_joints

    _, fe = encoder_and_extractor
    left = _left_arm_raise()
    right = mirror_joints(left)
    described = describe_concepts(_OneCodeEncoder(), fe, [left, right])
    words = described[0]["description"]
    assert words.startswith("one arm ") and "both" not in words, words
    assert segment_words(left, [(0, len(left), 0)], {0: words})[0].startswith("left arm ")
    assert segment_words(right, [(0, len(right), 0)], {0: words})[0].startswith("right arm ")
    # The measure scores what a timeline shows: the resolved words name the side, the stored ones do not.
    clips = [{"joints": left, "limb": "left arm", "travels": False}, {"joints": right, "limb": "right arm", "travels": False}]
    shown = concept_word_accuracy(_OneCodeEncoder(), fe, clips, {0: words})
    assert [r["both_ok"] for r in shown] == [1.0, 1.0], shown
    stored = concept_word_accuracy(_OneCodeEncoder(), fe, clips, {0: words}, resolve=False)
    assert [r["limb_ok"] for r in stored] == [0.0, 0.0], stored
    assert concept_word_accuracy(_OneCodeEncoder(), fe, clips, {0: "both arms moving"})[0]["limb_ok"] == 0.0


def test_swaying_in_place_is_not_travelling_but_walking_is(encoder_and_extractor):
    """Travel is sustained displacement: a lunge forward and back at 1 Hz (0.25 m/s of pelvis speed on average) is in
    place, not "travelling at 0.8 m/s" as the instantaneous speed said."""
    _, fe = encoder_and_extractor
    sway = describe_concepts(_OneCodeEncoder(), fe, [_sway()])[0]["description"]
    assert "travelling" not in sway, sway
    walk = describe_concepts(_OneCodeEncoder(), fe, [_walk()])[0]["description"]
    assert "travelling at" in walk and "both legs stepping" in walk, walk
    # A code half walking, half standing says "maybe travelling"; each clip fills it in.
    from humocon_hf.concepts import segment_words

    mixed = describe_concepts(_OneCodeEncoder(), fe, [_walk(), np.repeat(_walk()[:1], 80, axis=0)])[0]["description"]
    assert "maybe travelling" in mixed, mixed
    assert "travelling at" in segment_words(_walk(), [(0, 80, 0)], {0: mixed})[0]
    assert "in place" in segment_words(_sway(), [(0, 80, 0)], {0: mixed})[0]


def test_the_exported_timeline_names_the_clips_own_side(encoder_and_extractor, monkeypatch):
    """The export's concept_timeline.png (the model card's figure) lists the words a timeline shows for its clip:
    "left arm raising" for a left raise, though the checkpoint stores "one arm raising"."""
    from types import SimpleNamespace

    import humocon_hf.concepts as concepts
    from humocon_hf.pipeline.reporting import save_concept_timeline

    _, fe = encoder_and_extractor
    shown = {}
    monkeypatch.setattr(concepts, "plot_concept_timeline",
                        lambda segments, path, **kwargs: shown.update(kwargs["descriptions"]) or path)
    config = SimpleNamespace(motion_config=SimpleNamespace(concept_descriptions={"0": "one arm raising"},
                                                           codebook_size=8))
    model = SimpleNamespace(motion_encoder=_OneCodeEncoder(), config=config)
    save_concept_timeline(model, SimpleNamespace(motion_feature_extractor=fe), _left_arm_raise(), Path("unused.png"))
    assert shown == {0: "left arm raising"}, shown
