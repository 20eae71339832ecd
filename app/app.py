"""HuMoCon Space demo (Gradio): upload a motion (BVH / ASF+AMC / HumanML3D .npy / AMASS .npz) and/or a video, see the motion
rendered and its concept timeline, and chat about it with streamed answers.

    pip install "humocon-hf[app]"
    python app/app.py --model ./humocon_demo          # or HUMOCON_MODEL=org/name python app/app.py

`build_app(model_dir)` returns the `gr.Blocks`; its two API endpoints are what `gradio_client` can call: `/analyze`
(motion file, optional .asf) -> (preview GIF, concept timeline as HTML, text summary), and `/ask` (motion, video,
question, history, optional .asf) -> the history with the streamed answer. The folder is also a Hugging Face Space
(README.md, requirements.txt, examples/): `humocon_hf.hub.push_space` uploads it with the checkpoint it serves.
"""

from __future__ import annotations

import argparse
import html
import itertools
import os
import shutil
import tempfile
import weakref
from pathlib import Path

DEFAULT_MODEL = os.environ.get("HUMOCON_MODEL", "./humocon_demo")
# Short real clips a visitor can click (excerpts of CMU trials, see examples/README.md).
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
MAX_KEPT_RENDERS = 64  # preview GIFs and concept plots kept in the app's temporary folder
# Largest file an upload may be (bytes; $HUMOCON_MAX_UPLOAD_BYTES): Gradio sets no limit of its own. Motion files are
# bounded again by the readers (a BVH above 64 MiB, $HUMOCON_MAX_MOTION_BYTES, is refused before it is parsed).
MAX_UPLOAD_BYTES = int(float(os.environ.get("HUMOCON_MAX_UPLOAD_BYTES") or 100 * 1024**2))
NO_MEDIA_MESSAGE = ("Upload a motion file or a video first (or click one of the examples): the model answers about "
                    "a motion it is shown.")


def _path_of(file) -> str | None:
    """Gradio hands files over as paths (str), dicts with a `path`, or objects with `.name`."""
    if file is None:
        return None
    if isinstance(file, str):
        return file
    if isinstance(file, dict):
        return file.get("path") or file.get("name")
    return getattr(file, "name", None)


def _skeleton_for(motion_path: str | None, skeleton_path: str | None) -> str | None:
    """The uploaded .asf goes with an .amc motion only (uploads land in separate folders, so it is never found
    beside the motion); an .amc without one fails with the reader's message asking for it."""
    if skeleton_path and motion_path and Path(motion_path).suffix.lower() == ".amc":
        return skeleton_path
    return None


def _public_message(err: BaseException, *paths: str | None) -> str:
    """An error's text for the page: each uploaded file named by its name only (never the server's temporary
    path, which the readers' messages repeat), and without the command line's `--motion` / `--video` prefixes."""
    text = str(err)
    for path in filter(None, paths):
        name = Path(path).name
        for full in sorted({str(path), os.path.realpath(path)}, key=len, reverse=True):
            text = text.replace(full, name)
        for folder in sorted({str(Path(path).parent), os.path.dirname(os.path.realpath(path))}, key=len, reverse=True):
            text = text.replace(folder + os.sep, "")
        text = text.replace(f"{name}: {name}: ", f"{name}: ")
    for flag in ("--motion ", "--video ", "--skeleton "):
        text = text.replace(flag, "")
    return text


# Concept colours on the timeline: distinct within one clip (Okabe-Ito, then more), each with a text colour that
# keeps its key readable.
_TIMELINE_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#882255",
                     "#44AA99", "#999933", "#AA4499", "#888888")
TIMELINE_PLACEHOLDER = ('<div class="humocon-timeline" style="font-size:15px;opacity:.75;padding:8px 0">'
                        "The concept timeline appears here once a motion is loaded.</div>")


def _ink(colour: str) -> str:
    """Black or white, whichever reads better on `colour` (#rrggbb)."""
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return "#111111" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "#ffffff"


def concept_timeline_html(segments, fps: float, labels: dict[int, str], title: str, max_legend: int = 12) -> str:
    """The concept timeline as HTML: one bar of the clip's concept segments (width by duration, a numbered key on
    the wider ones), a time axis, then the concepts in words with their numbered keys and time ranges, in order of
    first appearance. Text stays text (readable at any width, on a phone too); everything shown is escaped."""
    segments = [(int(s), int(e), int(c)) for s, e, c in segments]
    total = max((e for _, e, _ in segments), default=0)
    order: list[int] = []
    for _, _, concept in segments:
        if concept not in order:
            order.append(concept)
    key = {c: i + 1 for i, c in enumerate(order)}
    colour = {c: _TIMELINE_COLOURS[i % len(_TIMELINE_COLOURS)] for i, c in enumerate(order)}

    def words(concept: int) -> str:
        return labels.get(concept) or f"concept #{concept} (this checkpoint stores no words for it)"

    def span(start: int, end: int) -> str:
        return f"{start / fps:.1f}–{max(end, start + 1) / fps:.1f} s"

    bar = []
    for start, end, concept in segments:
        width = max(end - start, 1)
        tip = html.escape(f"{span(start, end)}: {words(concept)}")
        text = str(key[concept]) if total and width / total >= 0.06 else ""
        bar.append(f'<span class="humocon-segment" title="{tip}" style="flex:{width} 1 0;background:{colour[concept]};'
                   f'color:{_ink(colour[concept])};display:flex;align-items:center;justify-content:center;'
                   f'min-width:2px;font-size:13px;font-weight:600;box-shadow:inset -1px 0 #ffffffaa">{text}</span>')
    legend = []
    for concept in order[:max_legend]:
        times = ", ".join(span(s, e).removesuffix(" s") for s, e, c in segments if c == concept)
        legend.append(
            f'<li style="display:flex;flex-wrap:wrap;align-items:baseline;gap:2px 8px;margin:5px 0">'
            f'<span class="humocon-key" style="flex:none;min-width:1.7em;text-align:center;border-radius:4px;'
            f'padding:0 4px;font-size:13px;font-weight:600;background:{colour[concept]};color:{_ink(colour[concept])}">'
            f'{key[concept]}</span><span class="humocon-words" style="flex:1 1 12em;overflow-wrap:anywhere">'
            f'{html.escape(words(concept))}</span><span style="flex:none;font-size:13px;opacity:.75">'
            f'{html.escape(times)} s · #{concept}</span></li>'
        )
    if len(order) > max_legend:
        legend.append(f'<li style="margin:5px 0;opacity:.75">and {len(order) - max_legend} more concepts '
                      "(all of them in the Motion box)</li>")
    return (
        '<div class="humocon-timeline" style="font-size:15px;line-height:1.35;padding:4px 0">'
        f'<div style="font-weight:600;margin-bottom:6px">{html.escape(title)}</div>'
        f'<div class="humocon-bar" role="img" aria-label="{html.escape(title)}" style="display:flex;height:34px;'
        f'border-radius:6px;overflow:hidden;border:1px solid #8886">{"".join(bar)}</div>'
        '<div style="display:flex;justify-content:space-between;font-size:13px;opacity:.75;margin-top:2px">'
        f"<span>0 s</span><span>{total / fps:.1f} s</span></div>"
        f'<ol class="humocon-legend" style="list-style:none;padding:0;margin:8px 0 0">{"".join(legend)}</ol></div>'
    )


def _text_of(content) -> str:
    """Chat message content as plain text (Gradio 6 sends `[{"type": "text", "text": ...}]` lists back)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, (list, tuple)):
        return "".join(_text_of(c) for c in content)
    return "" if content is None else str(content)


class HuMoConChat:
    """Model + processor + the helpers the page needs; one instance per app."""

    def __init__(self, model_dir: str, device: str = "auto"):
        from humocon_hf.inference import load_checkpoint

        self.model, self.processor, defaults = load_checkpoint(model_dir, device=device)
        self.system_prompt = defaults.get("system_prompt")
        self.max_new_tokens = int(defaults.get("max_new_tokens") or 32)
        self.bf16 = bool(defaults.get("bf16"))  # the numerics the checkpoint was evaluated with
        self.workdir = Path(tempfile.mkdtemp(prefix="humocon-app-"))
        self._counter = itertools.count()
        # Renders pile up per request: removed when the app object goes away or the process exits.
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.workdir), ignore_errors=True)

    def close(self) -> None:
        """Delete the app's temporary folder (previews and plots) now."""
        self._cleanup()

    def _prune(self, keep: int) -> None:
        """Keep only the newest `keep` renders: a long-running Space must not fill its disk."""
        files = sorted(self.workdir.iterdir(), key=lambda p: p.stat().st_mtime)
        for old in files[: max(0, len(files) - keep)]:
            old.unlink(missing_ok=True)

    def _joints(self, motion_path: str, skeleton_path: str | None = None):
        from humocon_hf.inference import UserInputError, check_media, load_media

        skeleton = _skeleton_for(motion_path, skeleton_path)
        try:
            check_media(motion_path, None)
            joints, _ = load_media(self.processor, motion_path, None, skeleton=skeleton)
        except (UserInputError, ValueError) as err:
            raise ValueError(_public_message(err, motion_path, skeleton)) from err
        return joints

    def analyze(self, motion_file, skeleton_file=None) -> tuple[str | None, str, str]:
        """Render the motion (GIF) and its concept timeline; returns (gif path, timeline HTML, summary). No motion
        (an upload removed, a skeleton given first) clears the outputs: nothing to show is not an error."""
        import gradio as gr

        from humocon_hf.concepts import clip_concept_words, motion_concepts
        from humocon_hf.inference import concept_lines
        from humocon_hf.pipeline.reporting import save_motion_preview

        path = _path_of(motion_file)
        if path is None:
            return None, TIMELINE_PLACEHOLDER, ""
        try:
            joints = self._joints(path, _path_of(skeleton_file))
        except ValueError as err:
            raise gr.Error(str(err)) from err
        self._prune(keep=MAX_KEPT_RENDERS)
        fe = self.processor.motion_feature_extractor
        stem = f"{Path(path).stem}-{next(self._counter)}"
        gif = save_motion_preview(joints, self.workdir / f"{stem}.gif", fps=fe.fps)
        segments = motion_concepts(self.model.motion_encoder, fe, [joints])[0]["segments"]
        # each concept's words, with what it leaves open ("one arm raised") read from this clip's frames of it
        labels = clip_concept_words(joints[:fe.max_frames], segments,
                                    getattr(self.model.config.motion_config, "concept_descriptions", None), fe.fps)
        name = Path(path).name
        timeline = concept_timeline_html(segments, fe.fps, labels, f"Concepts of {name} ({len(joints) / fe.fps:.1f} s)")
        summary = f"{name}: {len(joints)} frames at {fe.fps:g} fps ({len(joints) / fe.fps:.1f} s)"
        summary += "\n" + "\n".join(concept_lines(self.model, self.processor, joints))
        return str(gif), timeline, summary

    def conversation(self, history: list[dict], question: str, motion_path: str | None, video_path: str | None,
                     skeleton_path: str | None = None):
        """The model-side conversation: media in the first user turn, then the chat so far and the new question."""
        from humocon_hf.inference import load_media, system_messages, user_message

        motion = video = None
        if motion_path or video_path:
            skeleton = _skeleton_for(motion_path, skeleton_path)
            try:
                motion, video = load_media(self.processor, motion_path, video_path, skeleton=skeleton)
            except Exception as err:  # UserInputError / ValueError: show it on the page
                raise ValueError(_public_message(err, motion_path, video_path, skeleton)) from err
        messages = system_messages(self.system_prompt)
        first = True
        for turn in history:
            content = _text_of(turn["content"])
            if turn["role"] == "user":
                messages.append(user_message(content, motion if first else None, video if first else None))
                first = False
            else:
                messages.append({"role": "assistant", "content": content})
        messages.append(user_message(question, motion if first else None, video if first else None))
        return messages

    def ask(self, motion_file, video_file, question: str, history: list[dict] | None, skeleton_file=None):
        """Stream the answer: yields the updated chat history after every new piece of text."""
        import gradio as gr

        from humocon_hf.inference import stream_answer

        history = list(history or [])
        question = (question or "").strip()
        if not question:
            raise gr.Error("Type a question, e.g. 'What is the person doing?'")
        motion_path, video_path = _path_of(motion_file), _path_of(video_file)
        if not motion_path and not video_path:  # the model would answer anyway, as if it had seen a motion
            raise gr.Error(NO_MEDIA_MESSAGE)
        try:
            conversation = self.conversation(history, question, motion_path, video_path, _path_of(skeleton_file))
        except ValueError as err:
            raise gr.Error(str(err)) from err
        history = history + [{"role": "user", "content": question}, {"role": "assistant", "content": ""}]
        answer = ""
        for piece in stream_answer(self.model, self.processor, conversation, self.max_new_tokens, bf16=self.bf16):
            answer += piece
            history[-1] = {"role": "assistant", "content": answer}
            yield history
        history[-1] = {"role": "assistant", "content": answer.strip()}
        yield history


def build_app(model_dir: str = DEFAULT_MODEL, device: str = "auto"):
    """The Gradio Blocks of the Space. Raises `ValueError` with what to do when `model_dir` is not a checkpoint."""
    try:
        import gradio as gr
    except ImportError as err:  # an optional extra
        raise ImportError('the HuMoCon app needs Gradio: pip install "humocon-hf[app]"') from err
    from humocon_hf.inference import UserInputError

    try:
        chat = HuMoConChat(model_dir, device=device)
    except UserInputError as err:
        raise ValueError(str(err)) from err

    with gr.Blocks(title="HuMoCon: ask about human motion") as app:
        gr.Markdown(
            "# HuMoCon\nUpload a motion (BVH, ASF/AMC, HumanML3D `.npy`, AMASS `.npz`) and/or a video, or click an "
            "example; look at the rendered skeleton and the discovered motion concepts, then ask questions about it. "
            f"Files up to {MAX_UPLOAD_BYTES / 1024**2:g} MB."
        )
        with gr.Row():
            with gr.Column():
                motion = gr.File(label="Motion file", file_types=[".bvh", ".amc", ".npy", ".npz"], type="filepath",
                                 elem_id="motion-file")
                examples = sorted(EXAMPLES_DIR.glob("*.bvh"))
                if examples:
                    gr.Examples([[str(p)] for p in examples], inputs=[motion],
                                example_labels=[p.stem.split("_")[-1] for p in examples],
                                label="Examples: real motion capture from the CMU database (click one)")
                with gr.Accordion("More inputs: a video, or the .asf skeleton of an .amc motion", open=False):
                    video = gr.File(label="Video file (optional)",
                                    file_types=[".mp4", ".mov", ".avi", ".gif", ".webm", ".mkv"], type="filepath")
                    skeleton = gr.File(label="Skeleton of an .amc motion (its .asf)", file_types=[".asf"],
                                       type="filepath")
            with gr.Column():
                preview = gr.Image(label="Rendered motion", type="filepath", elem_id="motion-preview")
                timeline = gr.HTML(TIMELINE_PLACEHOLDER, label="Concept timeline", elem_id="concept-timeline")
                info = gr.Textbox(label="Motion", interactive=False, lines=3, max_lines=10, elem_id="motion-info")
        chatbot = gr.Chatbot(label="Conversation", height=320, elem_id="conversation")
        question = gr.Textbox(label="Question", placeholder="What is the person doing?", elem_id="question")
        with gr.Row():
            send = gr.Button("Ask", variant="primary")
            clear = gr.Button("New conversation")
        # The API's /ask (gradio_client): the conversation only, a user error raised. The page's own button also
        # empties the question box once the answer starts (and leaves alone what is typed meanwhile); what to do
        # first (no motion, no question, a file that does not load) is a notice there, the question kept, rather
        # than a failed event's red "Error" badges on the conversation and the question box.
        api_ask = gr.Button(visible=False)

        def ask_on_page(*inputs):
            first = True
            try:
                for history in chat.ask(*inputs):
                    yield history, ("" if first else gr.update())
                    first = False
            except gr.Error as err:
                if not first:
                    raise
                gr.Warning(err.message)
                yield gr.update(), gr.update()

        motion.change(chat.analyze, inputs=[motion, skeleton], outputs=[preview, timeline, info], api_name="analyze")
        skeleton.change(chat.analyze, inputs=[motion, skeleton], outputs=[preview, timeline, info], api_name=False)
        ask_inputs = [motion, video, question, chatbot, skeleton]
        api_ask.click(chat.ask, inputs=ask_inputs, outputs=[chatbot], api_name="ask")
        send.click(ask_on_page, inputs=ask_inputs, outputs=[chatbot, question], api_name=False)
        question.submit(ask_on_page, inputs=ask_inputs, outputs=[chatbot, question], api_name=False)
        clear.click(lambda: [], outputs=[chatbot], api_name=False)
    app.humocon_chat = chat
    # Every launch of this app (main() below, a Space, a test's own `app.launch(...)`) gets the upload limit unless it
    # names another one.
    launch = app.launch

    def launch_with_limit(*args, max_file_size=MAX_UPLOAD_BYTES, **kwargs):
        return launch(*args, max_file_size=max_file_size, **kwargs)

    app.launch = launch_with_limit
    return app


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="HuMoCon Gradio demo")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="Checkpoint folder or Hub id (default: $HUMOCON_MODEL or ./humocon_demo).")
    # A Space sets GRADIO_SERVER_NAME=0.0.0.0 (and the port): an address given here would override it.
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1",
                        help="Address to listen on (default: $GRADIO_SERVER_NAME, which a Space sets to 0.0.0.0, "
                             "else 127.0.0.1).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT") or 7860),
                        help="Port (default: $GRADIO_SERVER_PORT or 7860).")
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... (default: cuda when available).")
    args = parser.parse_args(argv)
    build_app(args.model, device=args.device).queue().launch(server_name=args.host, server_port=args.port,
                                                             max_file_size=MAX_UPLOAD_BYTES)


if __name__ == "__main__":
    main()
