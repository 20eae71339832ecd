"""HuMoCon Space demo (Gradio): upload a motion (BVH / ASF+AMC / HumanML3D .npy / AMASS .npz) and/or a video, see the motion
rendered and its concept timeline, and chat about it with streamed answers.

    pip install "humocon-hf[app]"
    python app/app.py --model ./humocon_demo          # or HUMOCON_MODEL=org/name python app/app.py

`build_app(model_dir)` returns the `gr.Blocks`; its two API endpoints (`/analyze`, `/ask`) are what the page calls
and what `gradio_client` can call.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import weakref
from pathlib import Path

DEFAULT_MODEL = os.environ.get("HUMOCON_MODEL", "./humocon_demo")
MAX_KEPT_RENDERS = 64  # preview GIFs and concept plots kept in the app's temporary folder
# Largest file an upload may be (bytes; $HUMOCON_MAX_UPLOAD_BYTES): Gradio sets no limit of its own. Motion files are
# bounded again by the readers (a BVH above 64 MiB, $HUMOCON_MAX_MOTION_BYTES, is refused before it is parsed).
MAX_UPLOAD_BYTES = int(float(os.environ.get("HUMOCON_MAX_UPLOAD_BYTES") or 100 * 1024**2))


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

        try:
            check_media(motion_path, None)
            joints, _ = load_media(self.processor, motion_path, None, skeleton=_skeleton_for(motion_path, skeleton_path))
        except UserInputError as err:
            raise ValueError(str(err).replace("--motion ", "")) from err
        return joints

    def analyze(self, motion_file, skeleton_file=None) -> tuple[str, str, str]:
        """Render the motion (GIF) and plot its concept timeline; returns (gif path, png path, summary)."""
        import gradio as gr

        from humocon_hf.inference import concept_lines
        from humocon_hf.pipeline.reporting import save_concept_timeline, save_motion_preview

        path = _path_of(motion_file)
        if path is None:
            raise gr.Error("Upload a motion file first (.bvh, .amc with its .asf, .npy or .npz).")
        try:
            joints = self._joints(path, _path_of(skeleton_file))
        except ValueError as err:
            raise gr.Error(str(err)) from err
        self._prune(keep=MAX_KEPT_RENDERS)
        stem = f"{Path(path).stem}-{next(self._counter)}"
        gif = save_motion_preview(joints, self.workdir / f"{stem}.gif", fps=self.processor.motion_feature_extractor.fps)
        png = save_concept_timeline(self.model, self.processor, joints, self.workdir / f"{stem}-concepts.png",
                                    title=f"Concepts of {Path(path).name}")
        fps = self.processor.motion_feature_extractor.fps
        summary = f"{Path(path).name}: {len(joints)} frames at {fps:g} fps ({len(joints) / fps:.1f} s)"
        summary += "\n" + "\n".join(concept_lines(self.model, self.processor, joints))
        return str(gif), str(png), summary

    def conversation(self, history: list[dict], question: str, motion_path: str | None, video_path: str | None,
                     skeleton_path: str | None = None):
        """The model-side conversation: media in the first user turn, then the chat so far and the new question."""
        from humocon_hf.inference import load_media, system_messages, user_message

        motion = video = None
        if motion_path or video_path:
            try:
                motion, video = load_media(self.processor, motion_path, video_path,
                                           skeleton=_skeleton_for(motion_path, skeleton_path))
            except Exception as err:  # UserInputError / ValueError: show it on the page
                raise ValueError(str(err)) from err
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
            "# HuMoCon\nUpload a motion (BVH, ASF/AMC, HumanML3D `.npy`, AMASS `.npz`) and/or a video, look at the rendered "
            "skeleton and the discovered motion concepts, then ask questions about it."
        )
        with gr.Row():
            with gr.Column():
                motion = gr.File(label="Motion file", file_types=[".bvh", ".amc", ".npy", ".npz"], type="filepath")
                skeleton = gr.File(label="Skeleton of an .amc motion (its .asf)", file_types=[".asf"], type="filepath")
                video = gr.File(label="Video file (optional)",
                                file_types=[".mp4", ".mov", ".avi", ".gif", ".webm", ".mkv"], type="filepath")
                info = gr.Textbox(label="Motion", interactive=False)
            with gr.Column():
                preview = gr.Image(label="Rendered motion", type="filepath")
                timeline = gr.Image(label="Concept timeline", type="filepath")
        chatbot = gr.Chatbot(label="Conversation", height=320)
        question = gr.Textbox(label="Question", placeholder="What is the person doing?")
        with gr.Row():
            send = gr.Button("Ask", variant="primary")
            clear = gr.Button("New conversation")

        motion.change(chat.analyze, inputs=[motion, skeleton], outputs=[preview, timeline, info], api_name="analyze")
        skeleton.change(chat.analyze, inputs=[motion, skeleton], outputs=[preview, timeline, info], api_name=False)
        ask_inputs = [motion, video, question, chatbot, skeleton]
        send.click(chat.ask, inputs=ask_inputs, outputs=[chatbot], api_name="ask")
        question.submit(chat.ask, inputs=ask_inputs, outputs=[chatbot], api_name=False)
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
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 inside a Space).")
    parser.add_argument("--port", type=int, default=7860, help="Port (default 7860).")
    parser.add_argument("--device", default="auto", help="cpu, cuda, ... (default: cuda when available).")
    args = parser.parse_args(argv)
    build_app(args.model, device=args.device).queue().launch(server_name=args.host, server_port=args.port,
                                                             max_file_size=MAX_UPLOAD_BYTES)


if __name__ == "__main__":
    main()
