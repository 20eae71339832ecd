"""MotionVideoProcessor: placeholder expansion, labels, chat template, save/load, remote code."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import run_without_the_package
from humocon_tiny import walk_joints
from transformers import AutoTokenizer

from humocon_hf.processing.feature_extraction_motion import MotionFeatureExtractor
from humocon_hf.processing.processing_humocon import IGNORE_INDEX, MotionVideoProcessor
from humocon_hf.processing.video_processing_humocon import HuMoConVideoProcessor


def _video(num_frames: int = 12, size: int = 48) -> np.ndarray:
    frames = np.zeros((num_frames, size, size, 3), np.uint8)
    for i in range(num_frames):
        frames[i, 10:20, 2 + 2 * i : 12 + 2 * i] = 255
    return frames


@pytest.fixture(scope="module")
def processor(smollm2_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)
    return MotionVideoProcessor(
        tokenizer=tokenizer,
        motion_feature_extractor=MotionFeatureExtractor(),
        video_processor=HuMoConVideoProcessor(num_frames=4, size={"height": 32, "width": 32}, patch_size=8),
        motion_token_stride=4,
        video_tokens_per_frame=1,
    )


def test_placeholders_are_added_as_single_special_tokens(processor):
    for token in (processor.motion_token, processor.video_token):
        ids = processor.tokenizer(f"a {token} b", add_special_tokens=False)["input_ids"]
        assert ids.count(processor.tokenizer.convert_tokens_to_ids(token)) == 1
    assert processor.motion_token_id != processor.video_token_id


def test_motion_placeholders_expand_to_encoder_token_counts(processor):
    motions = [walk_joints(37), walk_joints(20, seed=1)]
    out = processor(
        text=["What does <motion> show?", "Compare <motion>."], motions=motions, return_tensors="pt"
    )
    counts = (out["input_ids"] == processor.motion_token_id).sum(dim=1).tolist()
    assert counts == [math.ceil(37 / 4), math.ceil(20 / 4)]
    assert out["motion_values"].shape[:2] == (2, 37)
    assert out["motion_attention_mask"].sum(dim=1).tolist() == [37, 20]
    # padding rows of the text are masked
    assert out["attention_mask"].shape == out["input_ids"].shape


def test_video_placeholders_and_flow(processor):
    out = processor(
        text="Describe <video> please", videos=_video(), video_fps=10.0, return_flow=True, return_tensors="pt"
    )
    assert (out["input_ids"] == processor.video_token_id).sum().item() == 4 == processor.num_video_tokens
    assert out["pixel_values_videos"].shape == (1, 4, 3, 32, 32)
    assert out["video_timestamps"].shape == (1, 4)
    assert out["video_flow"].shape == (1, 3, 2, 4, 4)


def test_motion_and_video_in_one_prompt(processor):
    out = processor(
        text="<video> then <motion>", motions=walk_joints(9), videos=[_video()], video_fps=[10.0], return_tensors="pt"
    )
    ids = out["input_ids"][0].tolist()
    first_motion = ids.index(processor.motion_token_id)
    last_video = len(ids) - 1 - ids[::-1].index(processor.video_token_id)
    assert last_video < first_motion
    assert ids.count(processor.motion_token_id) == 3


@pytest.mark.parametrize(
    "text, n_motions, message",
    [
        ("no placeholder here", 1, "0 <motion> placeholder"),
        ("<motion> and <motion>", 1, "2 <motion> placeholder"),
        ("<motion>", 0, "1 <motion> placeholder"),
    ],
)
def test_placeholder_count_mismatch_is_a_clear_error(processor, text, n_motions, message):
    motions = [walk_joints(8) for _ in range(n_motions)] or None
    with pytest.raises(ValueError, match=message):
        processor(text=text, motions=motions)


def test_video_placeholder_mismatch(processor):
    with pytest.raises(ValueError, match="<video> placeholder"):
        processor(text="nothing", videos=_video(), video_fps=10.0)


def test_truncation_that_cuts_placeholders_is_refused(processor):
    with pytest.raises(ValueError, match="truncation"):
        processor(text="word " * 20 + "<motion>", motions=walk_joints(40), truncation=True, max_length=8)


def test_bad_motion_input_names_the_problem(processor):
    bad = walk_joints(10)
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        processor(text="<motion>", motions=bad)
    with pytest.raises(ValueError, match="22"):
        processor(text="<motion>", motions=np.zeros((10, 17, 3), np.float32))


def test_plain_call_labels_mask_padding_and_placeholders(processor):
    out = processor(
        text=["<motion> short", "a much longer prompt <motion> here"],
        motions=[walk_joints(8), walk_joints(8)],
        return_labels=True,
        return_tensors="pt",
    )
    labels, ids = out["labels"], out["input_ids"]
    assert (labels[ids == processor.motion_token_id] == IGNORE_INDEX).all()
    assert (labels[out["attention_mask"] == 0] == IGNORE_INDEX).all()
    keep = (out["attention_mask"] == 1) & (ids != processor.motion_token_id)
    assert torch.equal(labels[keep], ids[keep])


def _conversation(answer="walk", question="Does the person walk or run?"):
    return [
        {"role": "user", "content": [{"type": "motion", "motion": walk_joints(16)}, {"type": "text", "text": question}]},
        {"role": "assistant", "content": [{"type": "text", "text": answer}]},
    ]


def test_chat_template_renders_placeholders(processor):
    text = processor.apply_chat_template(_conversation(), add_generation_prompt=False)
    assert isinstance(text, str)
    assert text.count("<motion>") == 1
    assert "<|im_start|>assistant\nwalk<|im_end|>" in text
    prompt = processor.apply_chat_template(_conversation()[:1], add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")


def test_chat_template_labels_only_learn_the_answer(processor):
    # "walk" also appears in the question: only the assistant's copy may be learned.
    out = processor.apply_chat_template(_conversation(), tokenize=True, return_labels=True, return_tensors="pt", return_dict=True)
    labels = out["labels"][0]
    learned = labels[labels != IGNORE_INDEX].tolist()
    decoded = processor.tokenizer.decode(learned)
    assert decoded == "walk<|im_end|>"
    assert (out["input_ids"] == processor.motion_token_id).sum().item() == 4


def test_chat_template_returns_ids_alone_unless_asked_for_a_dict(processor):
    """ProcessorMixin's default: tokenize=True gives the token ids; return_dict=True the model's inputs."""
    ids = processor.apply_chat_template(_conversation(), tokenize=True, return_tensors="pt")
    inputs = processor.apply_chat_template(_conversation(), tokenize=True, return_tensors="pt", return_dict=True)
    assert not isinstance(ids, dict) and ids.tolist() == inputs["input_ids"].tolist()
    assert "motion_values" in inputs or any(k.startswith("motion") for k in inputs)


def test_chat_template_multi_turn_and_batch(processor):
    conv = _conversation("walk") + [
        {"role": "user", "content": "And then?"},
        {"role": "assistant", "content": "He stops."},
    ]
    batch = processor.apply_chat_template(
        [conv, _conversation("run", "Fast or slow?")], tokenize=True, return_labels=True, return_tensors="pt", return_dict=True)
    assert batch["input_ids"].shape[0] == 2
    assert batch["motion_values"].shape[0] == 2
    first = batch["labels"][0]
    decoded = processor.tokenizer.decode(first[first != IGNORE_INDEX].tolist())
    assert decoded == "walk<|im_end|>He stops.<|im_end|>"


def test_chat_template_accepts_paths(processor, tmp_path):
    path = tmp_path / "clip.npy"
    np.save(path, walk_joints(12))
    out = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "motion", "path": str(path)}, {"type": "text", "text": "?"}]}],
        tokenize=True,
        add_generation_prompt=True, return_dict=True)
    assert (out["input_ids"] == processor.motion_token_id).sum().item() == 3


def test_chat_template_rejects_unknown_content(processor):
    with pytest.raises(ValueError, match="unknown content type 'audio'"):
        processor.apply_chat_template([{"role": "user", "content": [{"type": "audio", "audio": "x.wav"}]}])
    with pytest.raises(ValueError, match="needs one of the keys"):
        processor.apply_chat_template([{"role": "user", "content": [{"type": "motion"}]}])


def test_save_and_load_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "processor_config.json").read_text())
    assert "auto_map" not in config
    assert config["motion_token_stride"] == 4
    assert config["motion_feature_extractor"]["feature_extractor_type"] == "MotionFeatureExtractor"
    loaded = MotionVideoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded.motion_feature_extractor, MotionFeatureExtractor)
    assert isinstance(loaded.video_processor, HuMoConVideoProcessor)
    assert loaded.video_processor.num_frames == 4
    kwargs = dict(text="<video><motion>", motions=walk_joints(13), videos=_video(), video_fps=10.0, return_tensors="np")
    a, b = processor(**kwargs), loaded(**kwargs)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_remote_code_load_without_the_package(processor, tmp_path):
    """A saved processor loads with trust_remote_code in a process where humocon_hf cannot be imported."""
    processor.save_pretrained(tmp_path, export_remote_code=True)
    assert "auto_map" in json.loads((tmp_path / "processor_config.json").read_text())
    assert (tmp_path / "processing_humocon.py").is_file()
    motion = tmp_path / "motion.npy"
    np.save(motion, walk_joints(13))
    expected = processor(text="<motion> hi", motions=str(motion), return_tensors="np")["input_ids"]
    run_without_the_package(
        f"""
        import numpy as np
        from transformers import AutoProcessor
        p = AutoProcessor.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
        assert type(p).__name__ == "MotionVideoProcessor", type(p)
        assert "humocon_hf" not in sys.modules
        ids = p(text="<motion> hi", motions={str(motion)!r}, return_tensors="np")["input_ids"]
        np.save({str(tmp_path / 'ids.npy')!r}, ids)
        """,
        tmp_path,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "ids.npy"), expected)


def test_auto_processor_loads_the_saved_processor(processor, tmp_path):
    from transformers import AutoProcessor

    import humocon_hf  # noqa: F401  (registers the Auto classes)

    processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, MotionVideoProcessor)
    assert loaded.video_processor.num_frames == processor.video_processor.num_frames


def test_modality_kwargs_dicts_and_unknown_kwargs(processor, caplog):
    """transformers' processor convention: per-modality dicts and common_kwargs are honoured, unknown keyword
    arguments are ignored with a warning (before: TypeError), a key in the wrong dict is refused by name."""
    text = "<motion> Does the person walk?"
    out = processor(text=text, motions=[walk_joints(40)], text_kwargs={"padding": "max_length", "max_length": 64},
                    motion_kwargs={"max_frames": 24}, common_kwargs={"return_tensors": "np"})
    assert isinstance(out["input_ids"], np.ndarray) and out["input_ids"].shape == (1, 64)
    assert out["motion_values"].shape[1] == 24
    assert (out["input_ids"] == processor.motion_token_id).sum() == processor.num_motion_tokens(24)
    loose = processor(text=text, motions=[walk_joints(40)], padding="max_length", max_length=64, padding_side="left",
                      return_tensors="pt")
    assert loose["input_ids"].shape == (1, 64) and loose["attention_mask"][0, 0] == 0  # padded on the left
    with caplog.at_level("WARNING"):
        processor(text=text, motions=[walk_joints(40)], not_a_processor_argument=1)
    assert "not_a_processor_argument" in caplog.text
    with pytest.raises(ValueError, match="motion_kwargs got \\['max_length'\\]"):
        processor(text=text, motions=[walk_joints(40)], motion_kwargs={"max_length": 3})
    with pytest.raises(ValueError, match="takes no images"):
        processor(text=text, motions=[walk_joints(40)], images_kwargs={"size": 3})
    video = processor(text="<video> What?", videos=[_video()], videos_kwargs={"return_flow": True, "fps": 10.0})
    assert "video_flow" in video


def test_chat_template_kwargs_reach_the_template_and_the_call(processor):
    """Extra template variables reach the template, call arguments reach __call__, conversation objects with
    `.messages` are accepted, and return_assistant_tokens_mask gives the answer tokens."""
    from types import SimpleNamespace

    template = ("{% for m in messages %}{{ m['role'] }}: {% if m['content'] is string %}{{ m['content'] }}"
                "{% else %}{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% else %}"
                "<{{ c['type'] }}>{% endif %}{% endfor %}{% endif %}\n{% endfor %}"
                "{% if add_system_prompt %}[system prompt on]{% endif %}")
    conv = _conversation()
    on = processor.apply_chat_template(conv, chat_template=template, add_system_prompt=True)
    off = processor.apply_chat_template(conv, chat_template=template)
    assert on.endswith("[system prompt on]") and "[system prompt on]" not in off
    as_object = processor.apply_chat_template(SimpleNamespace(messages=conv), chat_template=template)
    assert as_object == off
    out = processor.apply_chat_template(conv, tokenize=True, return_assistant_tokens_mask=True, padding_side="left",
                                        return_tensors="pt", return_dict=True)
    labelled = processor.apply_chat_template(conv, tokenize=True, return_labels=True, return_tensors="pt", return_dict=True)
    assert "labels" not in out
    assert out["assistant_masks"].tolist() == (labelled["labels"] != -100).long().tolist()
    answer = processor.tokenizer.decode(out["input_ids"][0][out["assistant_masks"][0].bool()])
    assert "walk" in answer


def test_call_takes_its_inputs_explicitly_and_the_rest_as_processing_kwargs(processor):
    """transformers 5's convention: `__call__` names only its inputs; defaults are processor attributes and every
    other argument is declared in `valid_processor_kwargs` (what its shared processor tests check)."""
    import inspect

    params = inspect.signature(type(processor).__call__).parameters
    explicit = {n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    assert explicit == {"text", "motions", "videos", "_assistant_spans", "_exact_spans"}
    assert all(params[n].default is None for n in explicit)
    declared = set(type(processor).valid_processor_kwargs.__annotations__)
    assert {"text_kwargs", "motion_kwargs", "videos_kwargs", "return_labels"} <= declared and not explicit & declared
    out = processor(text="<motion> walk", motions=[walk_joints(8)])  # defaults: padded torch tensors
    assert hasattr(out["input_ids"], "shape") and type(out["input_ids"]).__module__.startswith("torch")
    as_lists = processor(text="<motion> walk", motions=[walk_joints(8)], return_tensors=None, return_labels=True)
    assert isinstance(as_lists["input_ids"], list) and "labels" in as_lists


def test_chat_template_message_objects_and_blocks_for_a_callers_template(processor):
    """Message objects (dataclasses, pydantic-like) read as dicts, keys set to None dropped, OpenAI image_url blocks
    as transformers' image blocks; content types we cannot process only pass through a template the caller gives, and
    never into tokens."""
    import dataclasses

    @dataclasses.dataclass
    class Message:
        role: str
        content: list
        tool_calls: list | None = None

    @dataclasses.dataclass
    class ImageURLBlock:
        image_url: dict
        type: str = "image_url"

    template = ("{% for m in messages %}{{ m.role }}{% if m.tool_calls is defined %} (tools){% endif %}:"
                "{% for b in m.content %} {{ b.type }}={{ b.url or b.text }}{% endfor %}{% endfor %}")
    messages = [Message("user", [ImageURLBlock({"url": "https://example.com/cat.png"}), {"type": "text", "text": "Hi?"}])]
    assert processor.apply_chat_template(messages, chat_template=template) == "user: image=https://example.com/cat.png text=Hi?"
    with pytest.raises(ValueError, match="unknown content type 'image'"):
        processor.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=True)
    with pytest.raises(ValueError, match="unknown content type 'image'"):
        processor.apply_chat_template(messages)  # our templates would drop it
    # Media inside a block stay what they are: a MotionClip (a dataclass itself) is still read as a motion.
    from humocon_hf.processing.motion_io import MotionClip

    clip = MotionClip(joints=walk_joints(16), fps=20.0, source_fps=20.0)
    as_object = processor.apply_chat_template(
        [Message("user", [{"type": "motion", "motion": clip}, {"type": "text", "text": " walk?"}])], tokenize=True, return_dict=True)
    as_array = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "motion", "motion": walk_joints(16)}, {"type": "text", "text": " walk?"}]}],
        tokenize=True, return_dict=True)
    assert torch.equal(as_object["motion_values"], as_array["motion_values"])


def test_assistant_mask_follows_the_templates_generation_blocks(processor):
    """A template that marks what the assistant generates (`{% generation %}`) decides the labels and the assistant
    mask, as in transformers' tokenizers; without such blocks the answers (and their end-of-turn token) are learned."""
    tokenizer = processor.tokenizer
    template = ("{% for m in messages %}{{ m.role + '\\n' }}{% if m.role == 'assistant' %}{% generation %}"
                "{{ m.content[0].text + ' [end]' }}{% endgeneration %}{% else %}{{ m.content[0].text }}{% endif %}"
                "{{ '\\n' }}{% endfor %}")
    messages = [{"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Paris."}]}]
    reference = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=True,
                                              return_assistant_tokens_mask=True)
    expected = tokenizer.decode([t for t, m in zip(reference["input_ids"], reference["assistant_masks"]) if m])
    ours = processor.apply_chat_template(messages, chat_template=template, tokenize=True,
                                         return_assistant_tokens_mask=True, return_labels=True, return_dict=True)
    assert tokenizer.decode(ours["input_ids"][0][ours["assistant_masks"][0].bool()]) == expected == "Paris. [end]"
    assert ours["assistant_masks"].tolist() == (ours["labels"] != -100).long().tolist()


# ----------------------------------------------------------------------- transformers' video-processor conventions


def test_standard_video_kwargs_reach_the_video_processor(processor):
    """do_rescale / rescale_factor / do_normalize / image_mean / image_std work per call, as on any transformers video
    processor, and give what the video processor alone gives."""
    video = _video()
    for kwargs in ({"do_normalize": False}, {"do_rescale": True, "rescale_factor": -1.0},
                   {"image_mean": [0.0, 0.0, 0.0], "image_std": [1.0, 1.0, 1.0]}):
        alone = processor.video_processor(video, return_tensors="np", **kwargs)["pixel_values_videos"]
        through = processor(text="<video>", videos=video, return_tensors="np", **kwargs)["pixel_values_videos"]
        np.testing.assert_array_equal(alone, through)
        assert not np.allclose(alone, processor.video_processor(video, return_tensors="np")["pixel_values_videos"])
    raw = processor(text="<video>", videos=video, do_rescale=False, do_normalize=False)["pixel_values_videos"]
    assert raw.max() > 100  # neither rescaled nor normalised: 0-255 intensities


def test_without_frame_sampling_every_frame_is_a_key_frame(processor):
    """do_sample_frames=False keeps all N frames (the video encoder takes any count): `<video>` expands to N tokens."""
    video = _video(num_frames=7)
    out = processor(text="<video> go", videos=video, do_sample_frames=False, return_tensors="np")
    assert out["pixel_values_videos"].shape[1] == 7
    np.testing.assert_allclose(out["video_timestamps"][0], np.arange(7) / 20.0, atol=1e-6)  # default 20 fps
    assert int((out["input_ids"] == processor.video_token_id).sum()) == 7 * processor.video_tokens_per_frame
    with pytest.raises(ValueError, match=r"videos\[1\].*5 frames but the first video 7.*equal lengths"):
        processor(text="<video><video>", videos=[video, _video(num_frames=5)], do_sample_frames=False)


def test_a_keyword_given_loose_and_in_its_modality_dict_is_refused(processor):
    with pytest.raises(ValueError, match="'padding' is given twice.*text_kwargs"):
        processor(text="hi", text_kwargs={"padding": "do_not_pad"}, padding="max_length", max_length=8)
    with pytest.raises(ValueError, match="'do_normalize' is given twice.*videos_kwargs"):
        processor(text="<video>", videos=_video(), videos_kwargs={"do_normalize": False}, do_normalize=True)
    # common_kwargs only set defaults: a loose key beside them is no repetition
    out = processor(text="hi", common_kwargs={"return_tensors": "np"}, return_tensors="pt")
    assert isinstance(out["input_ids"], torch.Tensor)


def test_transformers_merges_this_processors_kwargs(processor):
    """transformers' own kwargs merging reads each modality's TypedDict from `valid_processor_kwargs`' annotations
    (they must be classes, not forward references)."""
    merged = processor._merge_kwargs(processor.valid_processor_kwargs, tokenizer_init_kwargs=processor.tokenizer.init_kwargs,
                                     do_normalize=False, fps=12.0, padding="max_length")
    assert merged["videos_kwargs"]["do_normalize"] is False and merged["videos_kwargs"]["fps"] == 12.0
    assert merged["text_kwargs"]["padding"] == "max_length"


def test_a_processor_saved_without_its_own_template_renders_typed_messages(processor, tmp_path):
    """Saved without a template of its own, a processor reloads with its tokenizer's (the two share
    chat_template.jinja): typed text content still renders, through the tokenizer's text template."""
    bare = MotionVideoProcessor(processor.tokenizer, processor.motion_feature_extractor, processor.video_processor,
                                motion_token_stride=4)
    bare.save_pretrained(tmp_path)
    loaded = MotionVideoProcessor.from_pretrained(tmp_path)
    messages = [{"role": "user", "content": [{"type": "text", "text": "Describe this."}, {"type": "video", "video": _video()}]}]
    flat = [{"role": "user", "content": "Describe this.<video>"}]
    expected = processor.tokenizer.apply_chat_template(flat, tokenize=False, add_generation_prompt=True)
    assert loaded.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == expected


def test_apply_chat_template_takes_the_processors_arguments_as_processor_kwargs(processor):
    """transformers 5's `processor_kwargs={...}` reaches `__call__` like loose keys (before, it went to the template
    as an unused variable and padding was silently not applied)."""
    conv = [{"role": "user", "content": [{"type": "motion", "motion": walk_joints(16)}, {"type": "text", "text": "Hi"}]}]
    loose = processor.apply_chat_template(conv, tokenize=True, padding="max_length", max_length=64, return_dict=True)
    nested = processor.apply_chat_template(conv, tokenize=True, processor_kwargs={"padding": "max_length", "max_length": 64}, return_dict=True)
    assert nested["input_ids"].shape[-1] == 64 and torch.equal(loose["input_ids"], nested["input_ids"])
    with pytest.raises(ValueError, match=r"\['padding'\] given both loose and in processor_kwargs"):
        processor.apply_chat_template(conv, tokenize=True, padding=True, processor_kwargs={"padding": "max_length"}, return_dict=True)


def test_tokenizer_loaded_with_defaults_keeps_them(smollm2_tokenizer_dir):
    """Defaults given to the tokenizer when it was loaded (here padding to a max_length) hold in the processor's
    calls unless the call overrides them, as in transformers' processors; the processor's own default is weaker."""
    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir, padding="max_length", max_length=40)
    proc = MotionVideoProcessor(tokenizer=tokenizer, motion_token_stride=4)
    assert proc(text="<motion> hi", motions=walk_joints(16))["input_ids"].shape[-1] == 40
    assert proc(text="<motion> hi", motions=walk_joints(16), padding="longest")["input_ids"].shape[-1] < 40


# ------------------------------------------------------------------------------------- issue 29: num_frames, names


@pytest.mark.parametrize("how", ["loose", "videos_kwargs", "chat_template", "chat_template_processor_kwargs"])
def test_num_frames_per_call_is_honoured(processor, how, caplog):
    """`num_frames` given to a call picks that many key frames, and the placeholders follow (it was dropped with a
    warning, or, through apply_chat_template, passed to the template as an unused variable)."""
    conversation = [{"role": "user", "content": [{"type": "video", "video": _video(), "fps": 10.0},
                                                 {"type": "text", "text": "What?"}]}]
    with caplog.at_level("WARNING"):
        if how == "loose":
            out = processor(text="<video> What?", videos=[_video()], video_fps=10.0, num_frames=6)
        elif how == "videos_kwargs":
            out = processor(text="<video> What?", videos=[_video()], videos_kwargs={"fps": 10.0, "num_frames": 6})
        elif how == "chat_template":
            out = processor.apply_chat_template(conversation, tokenize=True, return_dict=True, num_frames=6)
        else:
            out = processor.apply_chat_template(conversation, tokenize=True, return_dict=True,
                                                processor_kwargs={"num_frames": 6})
    assert "num_frames" not in caplog.text
    assert tuple(out["pixel_values_videos"].shape[:2]) == (1, 6) and tuple(out["video_timestamps"].shape) == (1, 6)
    assert int((out["input_ids"] == processor.video_token_id).sum()) == 6 * processor.video_tokens_per_frame
    default = processor(text="<video> What?", videos=[_video()], video_fps=10.0)
    assert default["pixel_values_videos"].shape[1] == processor.video_processor.num_frames == 4  # unchanged


def test_model_input_names_are_what_a_default_call_returns(processor):
    """transformers' shared processor test: a call with every modality returns exactly `model_input_names`."""
    out = processor(text="<motion> and <video>?", motions=[walk_joints(12)], videos=[_video()], video_fps=10.0)
    assert set(out.keys()) == set(processor.model_input_names)
    assert "video_flow" not in processor.model_input_names
    flow = processor(text="<video>?", videos=[_video()], video_fps=10.0, return_flow=True)
    assert "video_flow" in flow  # still there when asked for
