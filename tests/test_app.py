"""The Gradio Space demo: started on localhost and driven through `gradio_client` (skipped without Gradio)."""

import gc
import importlib.util
import os
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest

gr = pytest.importorskip("gradio", reason='the app is an optional extra: pip install "humocon-hf[app]"')
gradio_client = pytest.importorskip("gradio_client")

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
APP_PATH = Path(__file__).resolve().parents[1] / "app" / "app.py"


def _load_app_module():
    spec = importlib.util.spec_from_file_location("humocon_space_app", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def running_app(tmp_path_factory, smollm2_tokenizer_dir):
    from humocon_tiny import build_tiny_checkpoint

    ckpt = build_tiny_checkpoint(tmp_path_factory.mktemp("app"), smollm2_tokenizer_dir)
    app = _load_app_module().build_app(str(ckpt), device="cpu")
    port = _free_port()
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield app, f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def _motion(path: Path) -> Path:
    from humocon_tiny import write_motion_file

    return write_motion_file(path, frames=40)


def test_analyze_renders_the_motion_and_its_concepts(running_app, tmp_path):
    from gradio_client import Client, handle_file

    _, url = running_app
    client = Client(url, verbose=False)
    gif, timeline, summary = client.predict(handle_file(str(_motion(tmp_path))), api_name="/analyze")
    assert "40 frames" in summary and "Motion concepts" in summary and " s  #" in summary  # the timeline as text
    import imageio.v2 as imageio

    frames = imageio.mimread(gif)
    assert len(frames) > 1 and np.asarray(frames[0]).shape[-1] in (3, 4)
    # The timeline is HTML (text that stays readable at any width), not a picture shrunk to the column.
    assert 'class="humocon-timeline"' in timeline and "Concepts of clip.npy (2.0 s)" in timeline
    assert timeline.count('class="humocon-segment"') >= 1 and 'class="humocon-key"' in timeline


def test_a_removed_upload_clears_the_outputs_without_an_error(running_app):
    """Removing the uploaded file (or giving the .asf before its motion) runs /analyze without a motion: the
    preview, timeline and text are cleared; it used to raise, three red "Error" badges on the page."""
    from gradio_client import Client

    _, url = running_app
    client = Client(url, verbose=False)
    gif, timeline, summary = client.predict(None, None, api_name="/analyze")
    assert gif is None and summary == "" and timeline == _load_app_module().TIMELINE_PLACEHOLDER


def test_ask_streams_an_answer_through_the_api(running_app, tmp_path):
    from gradio_client import Client, handle_file

    app, url = running_app
    client = Client(url, verbose=False)
    motion = handle_file(str(_motion(tmp_path)))
    job = client.submit(motion, None, "What is the person doing?", [], api_name="/ask")
    history = job.result(timeout=300)
    assert [m["role"] for m in history] == ["user", "assistant"]
    text = _load_app_module()._text_of
    assert text(history[0]["content"]) == "What is the person doing?"
    # The answer is the model's own greedy answer to that conversation.
    final = list(app.humocon_chat.ask(str(_motion(tmp_path)), None, "What is the person doing?", []))[-1]
    assert text(history[1]["content"]) == text(final[-1]["content"])
    # A follow-up keeps the conversation.
    job = client.submit(motion, None, "And then?", history, api_name="/ask")
    assert [m["role"] for m in job.result(timeout=300)] == ["user", "assistant", "user", "assistant"]


def test_asf_amc_upload_with_its_skeleton(running_app, tmp_path, shared_data):
    """An .amc motion and its .asf, uploaded separately (Gradio puts them in different folders): analysed and asked
    about; without the skeleton, the page says what is missing."""
    from gradio_client import Client, handle_file

    source = shared_data / "hdm05_train"
    if not source.is_dir():
        pytest.skip("hdm05_train is not in the shared data")
    (tmp_path / "m").mkdir()
    (tmp_path / "s").mkdir()
    amc = tmp_path / "m" / "take.amc"
    amc.write_bytes(sorted(source.glob("HDM_bd_squat1Reps_*_120.amc"))[0].read_bytes())
    asf = tmp_path / "s" / "actor.asf"
    asf.write_bytes((source / "HDM_bd.asf").read_bytes())
    app, url = running_app
    client = Client(url, verbose=False)
    gif, timeline, summary = client.predict(handle_file(str(amc)), handle_file(str(asf)), api_name="/analyze")
    assert "take.amc" in summary and "Concepts of take.amc" in timeline and Path(gif).stat().st_size > 1000
    history = client.submit(handle_file(str(amc)), None, "What is the person doing?", [], handle_file(str(asf)),
                            api_name="/ask").result(timeout=300)
    assert [m["role"] for m in history] == ["user", "assistant"]
    with pytest.raises(Exception, match="asf"):
        client.predict(handle_file(str(amc)), None, api_name="/analyze")


def test_bad_inputs_show_an_error(running_app, tmp_path):
    from gradio_client import Client, handle_file

    _, url = running_app
    client = Client(url, verbose=False)
    bad = tmp_path / "notes.npy"
    bad.write_bytes(b"not a numpy file")
    for call in (lambda: client.predict(handle_file(str(bad)), api_name="/analyze"),
                 lambda: client.predict(handle_file(str(bad)), None, "What is the person doing?", [], api_name="/ask")):
        with pytest.raises(Exception, match="notes.npy") as err:
            call()
        # The file by its name, once: never the server's temporary path (it showed twice).
        message = str(err.value)
        assert message.count("notes.npy") == 1 and "not a valid .npy" in message, message
        assert "/" not in message and tempfile.gettempdir() not in message and "--motion" not in message, message
    with pytest.raises(Exception, match="question"):
        client.predict(None, None, "  ", [], api_name="/ask")


def test_ask_without_a_motion_or_video_says_so(running_app):
    """Asked with nothing to look at, the model used to answer anyway ("walk"), as if it had seen a motion."""
    from gradio_client import Client

    app, url = running_app
    with pytest.raises(Exception, match="Upload a motion file or a video first"):
        Client(url, verbose=False).predict(None, None, "What is the person doing?", [], api_name="/ask")
    with pytest.raises(gr.Error, match="Upload a motion file or a video first"):
        list(app.humocon_chat.ask(None, None, "What is the person doing?", []))


def test_public_message_names_uploads_by_their_file_name(tmp_path):
    module = _load_app_module()
    upload = tmp_path / "gradio" / "0123abcd" / "take.amc"
    err = ValueError(f"--motion {upload}: {upload}: needs its skeleton; file {upload.parent}/actor.asf is not there")
    assert module._public_message(err, str(upload), None) == (
        "take.amc: needs its skeleton; file actor.asf is not there")


def test_concept_timeline_html_is_escaped_numbered_and_in_words():
    module = _load_app_module()
    segments = [(0, 10, 7), (10, 12, 3), (12, 40, 7)]
    labels = {7: "both legs stepping, <b>travelling</b>"}
    page = module.concept_timeline_html(segments, 20.0, labels, "Concepts of <img src=x onerror=alert(1)>.bvh")
    assert "<img" not in page and "<b>" not in page and "&lt;b&gt;travelling" in page
    # Concepts in words, numbered in order of first appearance, with their time ranges and ids.
    assert page.count('class="humocon-key"') == 2 and "0.0–0.5, 0.6–2.0 s · #7" in page
    assert "concept #3 (this checkpoint stores no words for it)" in page
    assert page.count('class="humocon-segment"') == 3 and "font-size:15px" in page
    # Each key's text reads on its colour: dark ink on the light colours, white on the dark ones.
    assert module._ink("#F0E442") == "#111111" and module._ink("#0072B2") == "#ffffff"
    many = module.concept_timeline_html([(i, i + 1, i) for i in range(20)], 20.0, {}, "t", max_legend=12)
    assert many.count('class="humocon-key"') == 12 and "and 8 more concepts" in many


def test_main_listens_where_a_space_says(monkeypatch):
    """A Space sets GRADIO_SERVER_NAME=0.0.0.0: main() must not override it with 127.0.0.1 (unreachable there)."""
    module = _load_app_module()
    launched = {}

    class FakeApp:
        def queue(self):
            return self

        def launch(self, **kwargs):
            launched.update(kwargs)

    monkeypatch.setattr(module, "build_app", lambda *a, **k: FakeApp())
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7861")
    module.main(["--model", "m"])
    assert launched["server_name"] == "0.0.0.0" and launched["server_port"] == 7861
    assert launched["max_file_size"] == module.MAX_UPLOAD_BYTES
    monkeypatch.delenv("GRADIO_SERVER_NAME")
    monkeypatch.delenv("GRADIO_SERVER_PORT")
    module.main(["--model", "m"])
    assert launched["server_name"] == "127.0.0.1" and launched["server_port"] == 7860


def test_build_app_explains_a_missing_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        _load_app_module().build_app(str(tmp_path))


def test_app_cleans_its_temporary_folder(tmp_path, smollm2_tokenizer_dir):
    from humocon_tiny import build_tiny_checkpoint

    module = _load_app_module()
    chat = module.HuMoConChat(str(build_tiny_checkpoint(tmp_path, smollm2_tokenizer_dir)), device="cpu")
    workdir = chat.workdir
    for i in range(5):
        (workdir / f"render{i}.gif").write_bytes(b"x")
        os.utime(workdir / f"render{i}.gif", (i, i))
    chat._prune(keep=2)
    assert sorted(p.name for p in workdir.iterdir()) == ["render3.gif", "render4.gif"]
    del chat  # the folder goes with the app object (and at exit); chat.close() runs the same clean-up
    gc.collect()
    assert not workdir.exists()


def test_bundled_examples_are_small_credited_real_clips():
    """The Space's examples (issue 30): a visitor without a motion file can click one. Each is a short excerpt of a
    CMU trial (free for any use, credited in examples/README.md) that the motion readers load."""
    from humocon_hf.processing.motion_io import load_motion

    folder = APP_PATH.parent / "examples"
    clips = sorted(folder.glob("*.bvh"))
    assert [p.stem.split("_")[-1] for p in clips] == ["walk", "jump", "run"]
    credit = (folder / "README.md").read_text()
    assert "mocap.cs.cmu.edu" in credit and "NSF EIA-0196217" in credit
    for clip in clips:
        assert clip.stat().st_size < 300 * 1024 and clip.name in credit
        assert 1.0 <= len(load_motion(clip).joints) / 20.0 <= 4.0  # seconds at the model's 20 fps
