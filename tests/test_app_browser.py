"""The Space driven in a real headless browser (issue 30): Chromium (Debian's `chromium` package, which .ci/run
installs) through Playwright, against the app on localhost with a tiny checkpoint. A visitor asks before giving a
motion, uploads a bad file, removes it, uploads a real BVH, sees the preview and the concept timeline, asks and
watches the answer stream in, removes the upload again; an oversized file is refused; on a phone-sized viewport an
example's timeline keeps its full width and readable text.

Skipped, saying why, where Playwright or a Chromium is missing (HUMOCON_CHROMIUM names a browser binary)."""

import os
import re
import shutil
import socket
from pathlib import Path

import pytest

gr = pytest.importorskip("gradio", reason='the app is an optional extra: pip install "humocon-hf[app]"')
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs Playwright (pip install playwright: the test extra)")

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
REPO = Path(__file__).resolve().parents[1]
APP_PATH = REPO / "app" / "app.py"
EXAMPLE = REPO / "app" / "examples" / "cmu_02_01_walk.bvh"
UPLOAD_LIMIT = 1024**2  # a small limit for this app, to see an oversized file refused without writing 100 MB
QUESTION = "What is the person doing?"


def _chromium() -> str | None:
    """A Chromium binary: $HUMOCON_CHROMIUM, else the system's (Debian: /usr/bin/chromium), else Playwright's own
    download (`playwright install chromium`) when there is one."""
    if os.environ.get("HUMOCON_CHROMIUM"):
        return os.environ["HUMOCON_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        executable = _chromium()
        if executable is None and Path(p.chromium.executable_path).is_file():
            executable = p.chromium.executable_path
        if executable is None:
            pytest.skip("no Chromium found: install it (Debian: apt-get install chromium, as .ci/run does) or set "
                        "HUMOCON_CHROMIUM to a Chromium binary")
        browser = p.chromium.launch(executable_path=executable)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def space(tmp_path_factory, smollm2_tokenizer_dir):
    """The app on a free local port, serving a tiny checkpoint whose concepts have words (as `humocon demo`'s do)
    and whose answers are long enough to stream in several pieces."""
    import importlib.util

    from humocon_tiny import build_tiny_checkpoint

    spec = importlib.util.spec_from_file_location("humocon_space_app_browser", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.build_app(str(build_tiny_checkpoint(tmp_path_factory.mktemp("browser"), smollm2_tokenizer_dir)),
                           device="cpu")
    chat = app.humocon_chat
    motion_config = chat.model.config.motion_config
    motion_config.concept_descriptions = {str(c): f"both legs stepping, concept {c}"
                                          for c in range(motion_config.codebook_size)}
    # The random LLM's greedy answer is newlines only: with blank tokens suppressed it says words, in 16 pieces.
    tokenizer = chat.processor.tokenizer
    blank = [i for i in range(len(tokenizer)) if not tokenizer.decode([i]).strip()]
    chat.model.generation_config.suppress_tokens = sorted({*(chat.model.generation_config.suppress_tokens or []),
                                                           *blank})
    chat.max_new_tokens = 16
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                       max_file_size=UPLOAD_LIMIT)
    try:
        yield app, f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def _close_toasts(page) -> None:
    page.evaluate("document.querySelectorAll('.toast-close').forEach(button => button.click())")
    playwright_api.expect(page.locator(".toast-body")).to_have_count(0)


def _no_errors_shown(page) -> None:
    """No error toast and no red "Error" badge on any component."""
    expect = playwright_api.expect
    expect(page.locator(".toast-body.error")).to_have_count(0)
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)


def test_a_visitor_in_a_browser(browser, space, tmp_path):
    expect = playwright_api.expect
    app, url = space
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    page.goto(url)
    upload = page.locator("#motion-file input[type=file]")
    remove = page.locator("#motion-file button[aria-label=Clear]")
    question = page.locator("#question textarea")
    timeline = page.locator("#concept-timeline")

    # Asked with nothing to look at: a message, no answer, the question kept.
    question.fill(QUESTION)
    page.get_by_role("button", name="Ask").click()
    expect(page.locator(".toast-body")).to_contain_text("Upload a motion file or a video first")
    expect(page.locator('#conversation [data-testid="bot"]')).to_have_count(0)
    expect(question).to_have_value(QUESTION)
    _close_toasts(page)
    _no_errors_shown(page)  # a notice: no red "Error" badges on the conversation and the question box

    # A corrupt file: its name (once), not the server's temporary path.
    bad = tmp_path / "notes.npy"
    bad.write_bytes(b"not a numpy file")
    upload.set_input_files(str(bad))
    message = page.locator(".toast-body.error .toast-message-text")
    expect(message).to_have_text("notes.npy: not a valid .npy array file (unreadable header)")
    _close_toasts(page)

    # Removing it: the outputs clear, no error anywhere (there were three red "Error" badges).
    remove.click()
    expect(timeline).to_contain_text("The concept timeline appears here")
    _no_errors_shown(page)

    # An oversized file is refused by the page, naming it.
    big = tmp_path / "big.bvh"
    big.write_bytes(b"x" * (UPLOAD_LIMIT + 1000))
    upload.set_input_files(str(big))
    expect(message).to_contain_text('exceed the maximum allowed size of 1.0 Mb: "big.bvh"')
    _close_toasts(page)

    # A real BVH: the rendered preview, the timeline in words, the summary.
    upload.set_input_files(str(EXAMPLE))
    expect(page.locator("#motion-preview img")).to_have_attribute("src", re.compile(r"\.gif"))
    expect(timeline).to_contain_text(f"Concepts of {EXAMPLE.name}")
    expect(timeline.locator(".humocon-legend li").first).to_contain_text("both legs stepping, concept")
    expect(page.locator("#motion-info textarea")).to_have_value(re.compile(rf"^{EXAMPLE.name}: 58 frames at 20 fps"))

    # Ask: the answer streams in (several growing versions of the bot's message), the box empties.
    final = list(app.humocon_chat.ask(str(EXAMPLE), None, QUESTION, []))[-1][-1]["content"]
    page.evaluate("""() => {
        window.humoconSeen = [];
        const root = document.querySelector('#conversation');
        new MutationObserver(() => {
            const bots = root.querySelectorAll('[data-testid="bot"]');
            if (bots.length) window.humoconSeen.push(bots[bots.length - 1].innerText.trim());
        }).observe(root, {subtree: true, childList: true, characterData: true});
    }""")
    question.fill(QUESTION)
    question.press("Enter")
    expect(question).to_have_value("")
    bot = page.locator('#conversation [data-testid="bot"]')
    expect(bot).to_have_count(1)
    assert len(final.split()) >= 8
    expect(bot).to_have_text(final)  # whitespace-normalised, as the page renders it
    seen = [" ".join(text.split()) for text in page.evaluate("window.humoconSeen")]
    versions = list(dict.fromkeys(t for t in seen if t))
    assert len(versions) >= 2, f"the answer did not stream: {versions}"
    assert all(" ".join(final.split()).startswith(v) for v in versions), versions
    expect(page.locator('#conversation [data-testid="user"]')).to_have_text(QUESTION)

    # Removing the motion again: cleared, no error.
    remove.click()
    expect(timeline).to_contain_text("The concept timeline appears here")
    expect(page.locator("#motion-info textarea")).to_have_value("")
    _no_errors_shown(page)
    page.close()


def test_the_timeline_is_readable_on_a_phone(browser, space):
    expect = playwright_api.expect
    _, url = space
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                            has_touch=True)
    page.set_default_timeout(60_000)
    page.goto(url)
    page.get_by_role("button", name="jump", exact=True).click()  # a bundled example
    legend = page.locator("#concept-timeline .humocon-legend li")
    expect(legend.first).to_contain_text("both legs stepping, concept")
    box = page.locator("#concept-timeline .humocon-timeline").bounding_box()
    assert box["width"] >= 0.75 * 390, f"the timeline is {box['width']:.0f} px wide on a 390 px screen"
    words = page.locator("#concept-timeline .humocon-words").first
    assert float(words.evaluate("e => getComputedStyle(e).fontSize").removesuffix("px")) >= 14
    for key in page.locator("#concept-timeline .humocon-key").all():
        assert float(key.evaluate("e => getComputedStyle(e).fontSize").removesuffix("px")) >= 12
    for item in legend.all():
        right = item.bounding_box()["x"] + item.bounding_box()["width"]
        assert right <= 390, f"a legend line runs off the screen ({right:.0f} px)"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing to scroll sideways
    page.close()
