"""The chat format: a user turn's typed content as every checkpoint was trained on it (`user_content`), and the LLM's
chat template made to read that content (text / motion / video items), rendered only in jinja2's sandbox
(`ImmutableSandboxedEnvironment`, as transformers does): templates come from untrusted folders."""

from __future__ import annotations


def video_item(video, fps=None) -> dict:
    """A video content item: a file path (the processor decodes its key frames) or frames, with their `fps` if given."""
    item = {"type": "video", "video": video}
    if fps is not None:
        item["fps"] = fps
    return item


def user_content(text: list[dict], motions=(), videos=(), fps=None) -> list[dict]:
    """A user turn's content in the form every checkpoint was trained on: its motions and videos first, a newline,
    then its text items. Training (`HuMoConQACollator`), evaluation, `humocon ask` and the Space all build it here."""
    media = [{"type": "motion", "motion": m} for m in motions] + [video_item(v, fps) for v in videos]
    return [*media, {"type": "text", "text": "\n"}, *text] if media else list(text)


_RENDER_MACRO = (
    "{%- macro humocon_content(content) -%}{%- if content is string -%}{{ content }}{%- else -%}"
    "{%- for item in content -%}{%- if item['type'] == 'text' -%}{{ item['text'] }}"
    "{%- elif item['type'] == 'motion' -%}{{ '<motion>' }}{%- elif item['type'] == 'video' -%}{{ '<video>' }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}{%- endmacro -%}"
)


def typed_chat_template(template: str | None) -> str | None:
    """The LLM's own chat template made to accept typed content (text / motion / video items).

    A saved processor stores the tokenizer's template as its own; reloaded, the processor then renders typed items
    with a template that expects strings. Rewriting `message['content']` through a small macro keeps the LLM's exact
    prompt format (checked below: same text as rendering flattened strings) and works for both."""
    if not template or "item['type']" in template:
        return template
    rewritten = template
    for needle in ("messages[0]['content']", "message['content']", 'message["content"]'):
        rewritten = rewritten.replace(needle, f"humocon_content({needle})")
    if rewritten == template:
        return None  # no content access we recognise: the processor falls back to its own handling
    from jinja2.exceptions import SecurityError

    env = _sandboxed_template_env()
    flat = [{"role": "user", "content": "<motion>\nhi"}, {"role": "assistant", "content": "yes"}]
    typed = [{"role": "user", "content": [{"type": "motion"}, {"type": "text", "text": "\nhi"}]},
             {"role": "assistant", "content": "yes"}]
    try:
        same = env.from_string(template).render(messages=flat, add_generation_prompt=True) == env.from_string(
            _RENDER_MACRO + rewritten).render(messages=typed, add_generation_prompt=True)
    except SecurityError as err:
        raise ValueError(f"the LLM tokenizer's chat template reaches unsafe attributes and was not used ({err})") from None
    except Exception:  # templates using HF-only globals (strftime_now...): trust the rewrite
        same = True
    return _RENDER_MACRO + rewritten if same else None


def _sandboxed_template_env():
    """Jinja environment for tokenizer chat templates, which come from untrusted folders or the Hub.

    Same sandbox and options as transformers' own chat-template rendering: attribute access that could reach
    Python internals (``cycler.__init__.__globals__``) raises ``SecurityError`` instead of running code."""
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.globals["raise_exception"] = raise_exception
    return env
