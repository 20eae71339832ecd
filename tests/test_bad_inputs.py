"""Bad inputs, one place: corrupt, hostile and odd files, processor calls, checkpoints, recipes and command lines.

Every case asserts the error type and that the message names the file or field at fault (and, for the command
line, that it is one line with exit code 2). Each runs in well under a second; none needs a subprocess (crashes and
memory limits are covered where they are the point: test_motion_io's bounded headers, test_kill_resume).
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from humocon_tiny import walk_rotations, write_synthetic_bvh

from humocon_hf.cli import CLIError, main
from humocon_hf.inference import load_checkpoint
from humocon_hf.processing.motion_io import MotionClip, load_bvh, load_motion
from humocon_hf.recipes import RecipeError, load_recipe


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder with one good BVH (``good.bvh``) to corrupt, and its text."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    root, rots = walk_rotations(12)
    good = write_synthetic_bvh(folder / "good.bvh", root, rots)
    return folder, good.read_text()


def _all_of(message: str) -> str:
    """'a.*b' -> a regex that finds a and b in either order (messages name the file first or last)."""
    return "(?s)" + "".join(f"(?=.*{part})" for part in message.split(".*"))


def _write(folder: Path, name: str, content) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _npy(folder: Path, name: str, array, allow_pickle=False) -> Path:
    np.save(folder / name, array, allow_pickle=allow_pickle)
    return folder / name


def _huge_npy(folder: Path) -> Path:
    path = folder / "huge.npy"
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 22, 3)})
        fh.write(b"\0" * 512)
    return path


def _motion_lines(text: str) -> tuple[list[str], int]:
    lines = text.rstrip("\n").split("\n")
    return lines, lines.index("MOTION") + 3


def _shift_one_value(text: str) -> str:
    lines, first = _motion_lines(text)
    a, b = lines[first + 3].split(), lines[first + 4].split()
    lines[first + 3], lines[first + 4] = " ".join(a[:-1]), " ".join(b + [a[-1]])
    return "\n".join(lines) + "\n"


def _set_last_value(text: str, value: str) -> str:
    return text.rstrip("\n").rsplit(" ", 1)[0] + f" {value}\n"


_SNAKE = ("HIERARCHY\nROOT a\n{\nOFFSET 0 0 0\nCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation\n"
          "JOINT b\n{\nOFFSET 0 10 0\nCHANNELS 3 Zrotation Xrotation Yrotation\nEnd Site\n{\nOFFSET 0 10 0\n}\n}\n}\n"
          "MOTION\nFrames: 2\nFrame Time: 0.1\n0 0 0 0 0 0 0 0 0\n0 0 0 0 0 0 0 0 0\n")

# (case id, make the bad input from (folder, good BVH text) and load it, error type, message regex)
MOTION_CASES = [
    ("bvh-empty", lambda d, t: load_motion(_write(d, "empty.bvh", "")), ValueError, r"empty\.bvh.*empty"),
    ("bvh-not-bvh", lambda d, t: load_motion(_write(d, "hello.bvh", "hello\n")), ValueError, r"hello\.bvh.*not a BVH"),
    ("bvh-no-motion", lambda d, t: load_motion(_write(d, "nomotion.bvh", t.split("MOTION")[0])), ValueError,
     r"nomotion\.bvh.*MOTION"),
    ("bvh-truncated", lambda d, t: load_motion(_write(d, "trunc.bvh", t[:-200])), ValueError, r"trunc\.bvh.*truncated"),
    ("bvh-shifted-value", lambda d, t: load_motion(_write(d, "shift.bvh", _shift_one_value(t))), ValueError,
     r"shift\.bvh.*frame 3 has"),
    ("bvh-nan", lambda d, t: load_motion(_write(d, "nan.bvh", _set_last_value(t, "nan"))), ValueError, r"nan\.bvh.*NaN"),
    ("bvh-inf", lambda d, t: load_motion(_write(d, "inf.bvh", _set_last_value(t, "inf"))), ValueError, r"inf\.bvh.*infinite"),
    ("bvh-word", lambda d, t: load_motion(_write(d, "word.bvh", _set_last_value(t, "abc"))), ValueError,
     r"word\.bvh.*non-number 'abc'"),
    ("bvh-unclosed", lambda d, t: load_motion(_write(d, "open.bvh", t.replace("}\nMOTION", "MOTION", 1))), ValueError,
     r"open\.bvh.*unclosed"),
    ("bvh-zero-frames", lambda d, t: load_motion(_write(d, "zero.bvh", t.replace("Frames: 12", "Frames: 0"))), ValueError,
     r"zero\.bvh.*0 frames"),
    ("bvh-zero-frame-time", lambda d, t: load_motion(_write(d, "dt.bvh", t.replace("Frame Time: 0.01666667", "Frame Time: 0"))),
     ValueError, r"dt\.bvh.*Frame Time.*source_fps"),
    ("bvh-bad-channels", lambda d, t: load_motion(_write(d, "ch.bvh", t.replace("CHANNELS 3 Z", "CHANNELS 4 Z", 1))),
     ValueError, r"ch\.bvh.*CHANNELS"),
    ("bvh-unknown-channel", lambda d, t: load_motion(_write(d, "uc.bvh", t.replace("Zrotation", "Wrotation", 1))),
     ValueError, r"uc\.bvh.*unknown channel"),
    ("bvh-bad-offset", lambda d, t: load_motion(_write(d, "off.bvh", t.replace("OFFSET 0.000000 10.000000", "OFFSET 0 ten", 1))),
     ValueError, r"off\.bvh.*OFFSET"),
    ("bvh-two-roots", lambda d, t: load_motion(_write(d, "roots.bvh", t.replace("MOTION", "ROOT x\n{\nOFFSET 0 0 0\n}\nMOTION", 1))),
     ValueError, r"roots\.bvh.*several ROOT"),
    ("bvh-not-humanoid", lambda d, t: load_motion(_write(d, "snake.bvh", _SNAKE)), ValueError,
     r"snake\.bvh.*cannot map.*joint_map"),
    ("bvh-too-large", lambda d, t: load_motion(_sparse(d, "huge.bvh", t.split("MOTION")[0], 65 * 1024**2)), ValueError,
     r"huge\.bvh.*68157440 bytes.*more than the 67108864 bytes.*HUMOCON_MAX_MOTION_BYTES"),
    ("bvh-frames-over-limit", lambda d, t: load_motion(_write(d, "frames.bvh", t.replace("Frames: 12", "Frames: 9999999"))),
     ValueError, r"frames\.bvh.*9999999 frames, more than the 2000000"),
    ("bvh-two-dots", lambda d, t: load_motion(_write(d, "dots.bvh", _set_last_value(t, "1.5.5"))), ValueError,
     r"dots\.bvh.*non-number '1\.5\.5'"),
    ("bvh-joint-map-key", lambda d, t: load_bvh(d / "good.bvh", joint_map={"elbow": "LeftForeArm"}), ValueError,
     r"good\.bvh.*unknown SMPL joint 'elbow'"),
    ("bvh-joint-map-joint", lambda d, t: load_bvh(d / "good.bvh", joint_map={"head": "Nose"}), ValueError,
     r"good\.bvh.*'Nose' is not a joint"),
    ("bvh-joint-map-type", lambda d, t: load_bvh(d / "good.bvh", joint_map=["Head"]), ValueError,
     r"good\.bvh.*joint_map must be a dict"),
    ("bvh-unknown-rig", lambda d, t: load_bvh(d / "good.bvh", rig="robot"), ValueError, r"unknown rig 'robot'"),
    ("bvh-drop-tpose", lambda d, t: load_bvh(d / "good.bvh", drop_tpose="yes"), ValueError, r"good\.bvh.*drop_tpose"),
    ("bvh-scale", lambda d, t: load_bvh(d / "good.bvh", scale=-2), ValueError, r"good\.bvh.*scale"),
    ("bvh-up-axis", lambda d, t: load_bvh(d / "good.bvh", up_axis="w"), ValueError, r"good\.bvh.*up_axis"),
    ("bvh-fps", lambda d, t: load_bvh(d / "good.bvh", fps=0), ValueError, r"good\.bvh.*fps"),
    ("bvh-source-fps", lambda d, t: load_bvh(d / "good.bvh", source_fps="fast"), ValueError, r"good\.bvh.*source_fps"),
    ("npy-empty", lambda d, t: load_motion(_write(d, "empty.npy", b"")), ValueError, r"empty\.npy.*empty"),
    ("npy-garbage", lambda d, t: load_motion(_write(d, "garbage.npy", b"\x93NUMPY garbage")), ValueError,
     r"garbage\.npy.*not a valid \.npy"),
    ("npy-huge-header", lambda d, t: load_motion(_huge_npy(d)), ValueError, r"huge\.npy.*declares shape"),
    ("npy-objects", lambda d, t: load_motion(_npy(d, "obj.npy", np.array([None, 1], dtype=object), True)), ValueError,
     r"obj\.npy.*Python objects"),
    ("npy-shape", lambda d, t: load_motion(_npy(d, "shape.npy", np.zeros((5, 21, 3)))), ValueError,
     r"shape\.npy.*\(frames, 22, 3\)"),
    ("npy-no-frames", lambda d, t: load_motion(_npy(d, "noframes.npy", np.zeros((0, 22, 3)))), ValueError,
     r"noframes\.npy.*no frames"),
    ("npy-nan", lambda d, t: load_motion(_npy(d, "nanj.npy", np.full((4, 22, 3), np.nan))), ValueError, r"nanj\.npy.*NaN"),
    ("npy-zeros", lambda d, t: load_motion(_npy(d, "zeros.npy", np.zeros((9, 22, 3)))), ValueError,
     r"zeros\.npy.*degenerate skeleton"),
    ("npy-strings", lambda d, t: load_motion(_npy(d, "str.npy", np.full((4, 22, 3), "a"))), ValueError,
     r"str\.npy.*numeric"),
    ("npy-features-nan", lambda d, t: load_motion(_npy(d, "feat.npy", np.full((4, 263), np.nan))), ValueError,
     r"feat\.npy.*NaN"),
    ("npy-unknown-shape", lambda d, t: load_motion(_npy(d, "what.npy", np.zeros((4, 10)))), ValueError,
     r"what\.npy.*cannot tell"),
    ("npz-not-zip", lambda d, t: load_motion(_write(d, "broken.npz", b"PK\x03\x04 broken")), ValueError,
     r"broken\.npz.*not a valid \.npz"),
    ("npz-pickled", lambda d, t: load_motion(_pickled_npz(d)), ValueError, r"pickled\.npz.*Python objects"),
    ("npz-missing-keys", lambda d, t: load_motion(_plain_npz(d), body_model_dir=d), ValueError, r"plain\.npz.*lacks"),
    ("motion-extension", lambda d, t: load_motion(_write(d, "m.txt", "x")), ValueError, r"m\.txt.*unsupported"),
    ("motion-folder", lambda d, t: load_motion(d / "sub.bvh" if (d / "sub.bvh").mkdir() is None else None), ValueError,
     r"sub\.bvh.*directory"),
    ("motion-missing", lambda d, t: load_motion(d / "nowhere.bvh"), FileNotFoundError, r"nowhere\.bvh"),
    ("motion-type", lambda d, t: load_motion(42), ValueError, r"expected a path, an array or a MotionClip"),
    ("clip-fps", lambda d, t: MotionClip(joints=np.ones((3, 22, 3)), fps=0, source_fps=20), ValueError, r"fps"),
    ("clip-resample-huge", lambda d, t: load_motion(MotionClip(joints=np.random.rand(3, 22, 3), fps=1e-6, source_fps=1e-6),
                                                     fps=20), ValueError, r"over the limit"),
]


def _sparse(folder: Path, name: str, text: str, size: int) -> Path:
    """A file of `size` bytes that starts with `text` (sparse: nothing more on disk)."""
    path = _write(folder, name, text)
    with open(path, "r+b") as fh:
        fh.truncate(size)
    return path


def _pickled_npz(folder: Path) -> Path:
    np.savez(folder / "pickled.npz", poses=np.array([object()], dtype=object))
    return folder / "pickled.npz"


def _plain_npz(folder: Path) -> Path:
    np.savez(folder / "plain.npz", foo=np.zeros(3))
    return folder / "plain.npz"


@pytest.mark.parametrize("case, make, error, message", MOTION_CASES, ids=[c[0] for c in MOTION_CASES])
def test_bad_motion_inputs(files, case, make, error, message):
    folder, text = files
    with pytest.raises(error, match=_all_of(message)):
        make(folder, text)


# ----------------------------------------------------------------------------------------------- videos, processor


@pytest.fixture(scope="module")
def processor(smollm2_tokenizer_dir):
    from transformers import AutoTokenizer

    from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
    from humocon_hf.processing.processing_humocon import MotionVideoProcessor
    from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor

    return MotionVideoProcessor(
        tokenizer=AutoTokenizer.from_pretrained(smollm2_tokenizer_dir),
        motion_feature_extractor=MotionFeatureExtractor(),
        video_processor=HuMoConVideoProcessor(num_frames=4, size={"height": 32, "width": 32}, patch_size=8),
        motion_token_stride=4,
        video_tokens_per_frame=1,
    )


def _tiny_video(folder: Path) -> Path:
    import cv2

    path = folder / "tiny.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (32, 32))
    for _ in range(3):
        writer.write(np.full((32, 32, 3), 128, np.uint8))
    writer.release()
    return path


def _walk():
    from humocon_tiny import walk_joints as walk

    return walk(24)


PROCESSOR_CASES = [
    ("video-missing", lambda p, d: p(text="<video>", videos=[str(d / "none.mp4")]), FileNotFoundError, r"none\.mp4"),
    ("video-empty-file", lambda p, d: p(text="<video>", videos=[str(_write(d, "empty.mp4", b""))]), ValueError,
     r"empty\.mp4.*empty"),
    ("video-not-video", lambda p, d: p(text="<video>", videos=[str(_write(d, "text.mp4", "not a video"))]), ValueError,
     r"text\.mp4"),
    ("video-playlist", lambda p, d: p(text="<video>", videos=[str(_write(
        d, "list.m3u8", f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{_tiny_video(d)}\n#EXT-X-ENDLIST\n"))]),
     ValueError, r"cannot open video.*list\.m3u8"),
    ("video-wrong-ndim", lambda p, d: p(text="<video>", videos=[np.zeros((4, 32, 32), np.uint8)]), ValueError,
     r"videos\[0\].*\(N, H, W, 3\) RGB"),
    ("video-no-frames", lambda p, d: p(text="<video>", videos=[np.zeros((0, 32, 32, 3), np.uint8)]), ValueError,
     r"videos\[0\].*no frames"),
    ("motion-nan", lambda p, d: p(text="<motion>", motions=[np.full((10, 22, 3), np.nan)]), ValueError, r"NaN"),
    ("motion-shape", lambda p, d: p(text="<motion>", motions=[np.zeros((10, 23, 3))]), ValueError, r"\(frames, 22, 3\)"),
    ("placeholder-missing", lambda p, d: p(text="What is it?", motions=[_walk()]), ValueError, r"<motion>"),
    ("placeholder-extra", lambda p, d: p(text="<motion> <motion>", motions=[_walk()]), ValueError, r"<motion>"),
    ("chat-unknown-content", lambda p, d: p.apply_chat_template(
        [{"role": "user", "content": [{"type": "audio", "audio": "x.wav"}]}]), ValueError, r"audio"),
    ("tokens-negative", lambda p, d: p.num_motion_tokens(-8), ValueError, r"num_frames must be a non-negative integer"),
]


@pytest.mark.parametrize("case, make, error, message", PROCESSOR_CASES, ids=[c[0] for c in PROCESSOR_CASES])
def test_bad_processor_inputs(processor, tmp_path, case, make, error, message):
    with pytest.raises(error, match=_all_of(message)):
        make(processor, tmp_path)


# ----------------------------------------------------------------------------------------------- checkpoints


def _checkpoint_folder(tmp_path: Path, config: dict | str | None, weights: bytes | None = None) -> Path:
    folder = tmp_path / "ckpt"
    folder.mkdir(exist_ok=True)
    if config is not None:
        (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    if weights is not None:
        (folder / "model.safetensors").write_bytes(weights)
    return folder


def _humocon_config() -> dict:
    from humocon_hf.modeling.configuration_humocon import HuMoConConfig

    return HuMoConConfig().to_dict()


CHECKPOINT_CASES = [
    ("ckpt-missing-folder", lambda d: str(d / "nothing"), r"no such folder"),
    ("ckpt-no-config", lambda d: str(_checkpoint_folder(d, None)), r"no config\.json"),
    ("ckpt-bad-json", lambda d: str(_checkpoint_folder(d, "{oops")), r"config\.json is not a valid JSON"),
    ("ckpt-other-model", lambda d: str(_checkpoint_folder(d, {"model_type": "bert"})), r"model_type 'bert'"),
    ("ckpt-bad-field", lambda d: str(_checkpoint_folder(d, {**_humocon_config(), "motion_token_stride": "four"})),
     r"motion_token_stride.*expected int, got str"),
    ("ckpt-no-weights", lambda d: str(_checkpoint_folder(d, _humocon_config())), r"cannot load the model"),
    ("ckpt-truncated-weights", lambda d: str(_checkpoint_folder(d, _humocon_config(), b"\x08\x00\x00\x00\x00\x00\x00\x00{}")),
     r"cannot load the model"),
    ("ckpt-hub-offline", lambda d: "humocon-test/not-in-cache", r"Hub cannot be reached"),
]


@pytest.mark.parametrize("case, make, message", CHECKPOINT_CASES, ids=[c[0] for c in CHECKPOINT_CASES])
def test_bad_checkpoints(tmp_path, case, make, message):
    with pytest.raises(CLIError, match=_all_of(message)):
        load_checkpoint(make(tmp_path), device="cpu")


# ----------------------------------------------------------------------------------------------- recipes


RECIPE_CASES = [
    ("recipe-missing", lambda d: load_recipe(d / "none.yaml"), r"none\.yaml.*not found"),
    ("recipe-suffix", lambda d: load_recipe(_write(d, "r.txt", "model: {}")), r"r\.txt.*\.yaml"),
    ("recipe-yaml", lambda d: load_recipe(_write(d, "y.yaml", "model: [unclosed")), r"y\.yaml.*cannot parse"),
    ("recipe-not-mapping", lambda d: load_recipe(_write(d, "list.yaml", "- a\n- b\n")), r"list\.yaml.*mapping"),
    ("recipe-section-string", lambda d: load_recipe(_write(d, "s.yaml", "tune: fast\n")), r"s\.yaml.*'tune' must be a mapping"),
    ("recipe-unknown-section", lambda d: load_recipe(_write(d, "u.yaml", "train: {}\n")), r"u\.yaml.*unknown section"),
    ("recipe-unknown-key", lambda d: load_recipe(_write(d, "k.yaml", "tune: {learning_rat: 1}\n")), r"k\.yaml.*learning_rat"),
    ("recipe-latin1", lambda d: load_recipe(_write(d, "l.yaml", "model:\n  system_prompt: caf\xe9\n".encode("latin-1"))),
     r"l\.yaml.*UTF-8"),
    ("recipe-list-value", lambda d: load_recipe(_write(d, "lv.yaml", "tune: {learning_rate: [1, 2]}\n")),
     r"lv\.yaml.*learning_rate must be a number"),
    ("recipe-inf", lambda d: load_recipe(_write(d, "inf.yaml", "tune: {learning_rate: .inf}\n")),
     r"inf\.yaml.*learning_rate must be finite"),
    ("recipe-negative", lambda d: load_recipe(_write(d, "neg.yaml", "tune: {learning_rate: -0.1}\n")),
     r"neg\.yaml.*must be >= 0"),
    ("recipe-bool-count", lambda d: load_recipe(_write(d, "b.yaml", "data: {num_train_motions: true}\n")),
     r"b\.yaml.*num_train_motions must be an integer"),
    ("recipe-number-name", lambda d: load_recipe(_write(d, "n.yaml", "model: {llm_name_or_path: 123}\n")),
     r"n\.yaml.*llm_name_or_path must be a string"),
    ("recipe-override", lambda d: load_recipe("small", overrides={"tune": {"max_steps": "many"}}),
     r"small\.yaml.*max_steps must be an integer"),
]


@pytest.mark.parametrize("case, make, message", RECIPE_CASES, ids=[c[0] for c in RECIPE_CASES])
def test_bad_recipes(tmp_path, case, make, message):
    with pytest.raises(RecipeError, match=_all_of(message)):
        make(tmp_path)


# ----------------------------------------------------------------------------------------------- fine-tuning data


_GOOD_QA = json.dumps({"motion": "m.npy", "question": "What is the person doing?", "answer": "walk"})


def _qa(folder: Path, name: str, *lines) -> Path:
    """A QA file whose first line is a good record and whose next lines are `lines` (str or bytes)."""
    parts = [_GOOD_QA.encode(), *(x.encode() if isinstance(x, str) else x for x in lines)]
    return _write(folder, name, b"\n".join(parts) + b"\n")


def _load_qa(path: Path, **kwargs):
    from humocon_hf.data import load_custom_qa

    return load_custom_qa(path, check_files=False, **kwargs)


_PRETTY_DUPLICATE = '[\n  {"motion": "m.npy", "question": "q", "answer": "a"},\n  {\n    "motion": "m.npy",\n' \
                    '    "question": "q", "answer": "a", "answer": "b"\n  }\n]\n'

# (case id, make the bad QA file in a folder and load it, message regex); every error is a ValueError
QA_CASES = [
    ("qa-blank-answer", lambda d: _load_qa(_qa(d, "ba.jsonl", '{"motion": "m.npy", "question": "q", "answer": " "}')),
     r"ba\.jsonl: line 2: 'answer' is empty"),
    ("qa-empty-answer", lambda d: _load_qa(_qa(d, "ea.jsonl", "", '{"motion": "m.npy", "question": "q", "answer": ""}')),
     r"ea\.jsonl: line 3: 'answer' is empty"),
    ("qa-blank-question", lambda d: _load_qa(_qa(d, "bq.jsonl", '{"motion": "m.npy", "question": "\\n", "answer": "a"}')),
     r"bq\.jsonl: line 2: needs 'question' \(a non-empty string\)"),
    ("qa-blank-user-message", lambda d: _load_qa(_qa(d, "bu.jsonl", json.dumps(
        {"motion": "m.npy", "conversations": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]}))),
     r"bu\.jsonl: line 2: message 0 \(user\) is empty"),
    ("qa-blank-question-beside-conversation", lambda d: _load_qa(_qa(d, "bc.jsonl", json.dumps(
        {"motion": "m.npy", "question": " ", "conversations": [{"role": "user", "content": "q"},
                                                               {"role": "assistant", "content": "a"}]}))),
     r"bc\.jsonl: line 2: 'question' is empty"),
    ("qa-blank-assistant", lambda d: _load_qa(_qa(d, "bm.jsonl", json.dumps(
        {"motion": "m.npy", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "\t"}]}))),
     r"bm\.jsonl: line 2: message 1 \(gpt\) is empty"),
    ("qa-json-blank-answer", lambda d: _load_qa(_write(d, "ba.json", json.dumps([json.loads(_GOOD_QA),
                                                                              {"motion": "m", "question": "q", "answer": ""}]))),
     r"ba\.json: record 1: 'answer' is empty"),
    ("qa-training-no-answer", lambda d: _load_qa(_qa(d, "na.jsonl", '{"motion": "m.npy", "question": "q"}'),
                                                 require_answer=True),
     r"na\.jsonl: line 2: has no answer"),
    ("qa-duplicate-key", lambda d: _load_qa(_qa(d, "dup.jsonl", '{"motion": "m.npy", "question": "q", "answer": "a", '
                                                                 '"answer": "b"}')),
     r"dup\.jsonl: line 2 has the key 'answer' twice"),
    ("qa-json-duplicate-key", lambda d: _load_qa(_write(d, "dup.json", _PRETTY_DUPLICATE)),
     r"dup\.json: line 3: an object has the key 'answer' twice"),
    ("qa-long-line", lambda d: _load_qa(_sparse(d, "long.jsonl", '{"motion": "', 100 * 1024**2)),
     r"long\.jsonl: line 1 is longer than 1 MiB"),
    ("qa-too-large", lambda d: _load_qa(_sparse(d, "big.jsonl", _GOOD_QA + "\n", 300 * 1024**2)),
     r"big\.jsonl: larger than 256 MiB"),
    ("qa-json-too-large", lambda d: _load_qa(_sparse(d, "big.json", "[", 300 * 1024**2)), r"big\.json: larger than 256 MiB"),
    ("qa-latin1", lambda d: _load_qa(_qa(d, "l1.jsonl", "", '{"motion": "m.npy", "question": "caf\xe9?", "answer": "a"}'
                                                            .encode("latin-1"))),
     r"l1\.jsonl: line 3 is not UTF-8 text \(byte 0xe9\)"),
    ("qa-json-latin1", lambda d: _load_qa(_write(d, "l1.json", '[\n{"motion": "m", "question": "caf\xe9?"}\n]'
                                                 .encode("latin-1"))),
     r"l1\.json: line 2 is not UTF-8 text"),
]


@pytest.mark.parametrize("case, make, message", QA_CASES, ids=[c[0] for c in QA_CASES])
def test_bad_finetuning_data(tmp_path, case, make, message):
    with pytest.raises(ValueError, match=_all_of(message)):
        make(tmp_path)


def test_a_long_qa_line_is_refused_without_reading_it_whole(tmp_path):
    """A 100 MB line costs at most about the 1 MiB bound in memory, not the line."""
    import tracemalloc

    path = _sparse(tmp_path, "long.jsonl", _GOOD_QA + '\n{"motion": "', 100 * 1024**2)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"long\.jsonl: line 2 is longer than 1 MiB"):
            _load_qa(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024**2, peak


# ----------------------------------------------------------------------------------------------- command line


CLI_CASES = [
    ("cli-override-form", ["pretrain", "--override", "tune.max_steps"], r"section\.key=value"),
    ("cli-override-section", ["pretrain", "--override", "train.max_steps=3"], r"unknown section 'train'"),
    ("cli-recipe-missing", ["pretrain", "--recipe", "nope.yaml"], r"recipe 'nope\.yaml' not found"),
    ("cli-seed-and-seeds", ["demo", "--seed", "1", "--seeds", "0", "1"], r"either --seed or --seeds"),
    ("cli-bad-steps-scale", ["pretrain", "--steps-scale", "0"], r"steps_scale must be a positive number"),
    ("cli-ask-no-question", ["ask", "--model", "nowhere"], r"give a question"),
    ("cli-ask-missing-model", ["ask", "--model", "./nowhere", "q"], r"no such folder"),
    ("cli-inspect-missing", ["inspect", "nowhere.bvh"], r"no such file"),
    ("cli-inspect-json", ["inspect", "{good}", "--joint-map", "{neck"], r"not valid JSON"),
    ("cli-inspect-corrupt", ["inspect", "{bad}"], r"bad\.bvh.*not a BVH"),
    ("cli-finetune-blank-answer", ["finetune", "--model", "nowhere", "--data", "{blank}"],
     r"blank\.jsonl: line 2: 'answer' is empty"),
]


@pytest.mark.parametrize("case, argv, message", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_bad_command_lines(files, tmp_path, capsys, case, argv, message):
    folder, _ = files
    bad = _write(tmp_path, "bad.bvh", "garbage\n")
    blank = _qa(tmp_path, "blank.jsonl", '{"motion": "m.npy", "question": "q", "answer": ""}')
    argv = [a.replace("{good}", str(folder / "good.bvh")).replace("{bad}", str(bad)).replace("{blank}", str(blank))
            for a in argv]
    if argv[0] in ("pretrain", "demo", "ablate", "finetune"):
        argv += ["--output-dir", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"humocon {argv[0]}: error:")
    assert re.search(_all_of(message), err), err


def test_there_are_at_least_sixty_cases():
    assert len(MOTION_CASES) + len(PROCESSOR_CASES) + len(CHECKPOINT_CASES) + len(RECIPE_CASES) + len(CLI_CASES) \
        + len(QA_CASES) >= 60


def _chain_bvh(folder: Path, joints: int) -> Path:
    """A hostile BVH: one chain of `joints` joints (deep nesting, thousands of joints)."""
    lines = ["HIERARCHY", "ROOT j0", "{", "OFFSET 0 0 0", "CHANNELS 3 Xposition Yposition Zposition"]
    for i in range(1, joints):
        lines += [f"JOINT j{i}", "{", "OFFSET 0 1 0", "CHANNELS 1 Zrotation"]
    lines += ["}"] * joints
    lines += ["MOTION", "Frames: 1", "Frame Time: 0.1", " ".join(["0"] * (joints + 2))]
    path = folder / f"chain{joints}.bvh"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_hostile_skeletons_are_refused_quickly(tmp_path):
    import time

    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"chain6000\.bvh.*6000 joints, more than the 5000"):
        load_motion(_chain_bvh(tmp_path, 6000))
    with pytest.raises(ValueError, match=r"chain3000\.bvh.*cannot map"):
        load_motion(_chain_bvh(tmp_path, 3000))
    assert time.perf_counter() - start < 20  # linear work: no per-joint ancestor lists, no n^4 chain search


def test_stick_figure_with_one_bone_limbs_names_the_file(tmp_path):
    """Five limbs of one bone each: a humanoid's shape but no knee or elbow to map."""
    lines = ["HIERARCHY", "ROOT hips", "{", "OFFSET 0 0 0", "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"]
    for name, offset in (("a", "10 -40 0"), ("b", "-10 -40 0"), ("c", "0 30 0")):
        lines += [f"JOINT {name}", "{", f"OFFSET {offset}", "CHANNELS 3 Zrotation Xrotation Yrotation",
                  "End Site", "{", "OFFSET 0 -40 0" if name != "c" else "OFFSET 0 20 0", "}"]
        if name == "c":
            for arm, off in (("d", "20 0 0"), ("e", "-20 0 0")):
                lines += [f"JOINT {arm}", "{", f"OFFSET {off}", "CHANNELS 3 Zrotation Xrotation Yrotation",
                          "End Site", "{", "OFFSET 0 -30 0", "}", "}"]
        lines += ["}"]
    lines += ["}", "MOTION", "Frames: 2", "Frame Time: 0.05"]
    lines += [" ".join(["0"] * 21)] * 2
    path = tmp_path / "stick.bvh"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"stick\.bvh: cannot map.*too short.*joint_map"):
        load_motion(path)


@pytest.mark.parametrize("channels, match", [
    ("CHANNELS 6 Xposition Yposition Zposition Xrotation Xrotation Xrotation", "more than once"),
    ("CHANNELS 6 Xposition Xposition Zposition Zrotation Xrotation Yrotation", "more than once"),
    ("CHANNELS 9 Xposition Yposition Zposition Zrotation Xrotation Yrotation Zrotation Xrotation Yrotation",
     "more than once"),
])
def test_bvh_channels_listed_twice_are_refused(tmp_path, channels, match):
    """A repeated channel would be read as another axis (joints metres off): a named error instead."""
    from humocon_hf.processing.bvh_parser import parse_bvh

    path = tmp_path / "twice.bvh"
    path.write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n  " + channels + "\n  End Site\n  {\n    OFFSET 0 1 0\n"
                    "  }\n}\nMOTION\nFrames: 1\nFrame Time: 0.0333\n" + " ".join(["0"] * int(channels.split()[1])) + "\n")
    with pytest.raises(ValueError, match=match):
        parse_bvh(path)
    second = path.read_text().replace(channels, channels.split(" ", 1)[0] + " 3 Zrotation Xrotation Yrotation\n  "
                                      "CHANNELS 3 Zrotation Xrotation Yrotation")
    path.write_text(second.replace("Frames: 1\nFrame Time: 0.0333\n" + " ".join(["0"] * int(channels.split()[1])),
                                   "Frames: 1\nFrame Time: 0.0333\n0 0 0 0 0 0"))
    with pytest.raises(ValueError, match="second CHANNELS"):
        parse_bvh(path)


@pytest.mark.parametrize("joint_map, match", [
    ({"left_wrist": "LeftHand", "right_wrist": "LeftHand"}, "maps both"),
    ({"spine": 3}, "list of names"),
    ({"neck": ["Neck"]}, "must be a joint name"),
])
def test_joint_map_mistakes_are_named(tmp_path, joint_map, match):
    bvh = write_synthetic_bvh(tmp_path / "walk.bvh", *walk_rotations(40))
    with pytest.raises(ValueError, match=match):
        load_bvh(bvh, joint_map=joint_map)
    assert main(["inspect", str(bvh), "--joint-map", json.dumps(joint_map), "--preview", "none"]) != 0
