"""Concepts in words: `describe_concepts` measures what the frames of each concept do (which body part moves and
how), the demo stores the words in the checkpoint's config, and timelines / `humocon ask --concepts` show them."""

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
    encoder, fe = encoder_and_extractor
    raised = describe_concepts(encoder, fe, [_left_arm_raise()], ["a person raises the left arm"])
    # The (untrained) encoder splits the frames among concepts arbitrarily; every concept must name the left arm only,
    # and the one covering most frames the raise.
    assert raised and all(d["description"].startswith("left arm") for d in raised.values()), raised
    assert max(raised.values(), key=lambda d: d["frames"])["description"] == "left arm raising", raised
    first = next(iter(raised.values()))
    assert first["captions"] == ["a person raises the left arm"]
    assert first["part_speed"]["left arm"] > 0.3 > first["part_speed"]["right arm"]
    from humocon_hf.processing.smpl22 import mirror_joints

    mirrored = describe_concepts(encoder, fe, [mirror_joints(_left_arm_raise())])
    assert mirrored and all(d["description"].startswith("right arm") for d in mirrored.values()), mirrored
    assert max(mirrored.values(), key=lambda d: d["frames"])["description"] == "right arm raising", mirrored


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
    with pytest.raises(ValueError, match="concept_descriptions"):
        HuMoConMotionEncoderConfig(concept_descriptions={"x": "y"})
    plain = plot_concept_timeline([(0, 40, 3), (40, 60, 7)], tmp_path / "plain.png")
    named = plot_concept_timeline([(0, 40, 3), (40, 60, 7)], tmp_path / "named.png",
                                  descriptions=loaded.concept_descriptions)
    import imageio.v2 as imageio

    # The described plot is taller: it lists "3: left arm raising" and "7: holding still" under the timeline.
    assert imageio.imread(named).shape[0] > imageio.imread(plain).shape[0]
