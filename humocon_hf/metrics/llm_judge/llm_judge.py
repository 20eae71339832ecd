"""LLM-judge protocol for open-ended video QA (ActivityNet-QA, as in Video-ChatGPT and the HuMoCon paper).

For each (question, correct answer, predicted answer) a judge LLM replies whether the prediction is
correct ("yes"/"no") and a 0-5 score; accuracy = rate of "yes", score = mean score.

Differences from the reference script, on purpose:
* any local causal LM is the judge (`LLMJudge(model, tokenizer)`), decoding is greedy (`do_sample=False`),
  so a run is reproducible;
* the reply parser accepts a Python dict (``{'pred': 'yes', 'score': 4}``), JSON, a dict with broken
  syntax, or free text ("Yes, ... score: 4", "4/5");
* unparsable replies are retried at most `max_retries` times (the reference loops forever). Because
  greedy decoding would repeat the same reply, each retry changes the prompt: retry 1 adds a format
  reminder, later retries also pre-fill the reply with ``{'pred': '`` so the model only completes the
  dict. After the last retry the example gets the fallback verdict ("no", score 0) and is counted in
  `num_fallbacks`, so a weak judge shows up in the numbers instead of hanging the run.

Use either the class directly (`LLMJudge(...).evaluate(questions, answers, predictions)`) or this file as
an `evaluate` module: ``evaluate.load(<this folder>).compute(predictions=..., references=...,
questions=..., judge=LLMJudge(...))``. This file imports only stdlib / `evaluate` / `datasets` at module
level (torch / transformers lazily), because `evaluate` copies it into its module cache.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import datasets
import evaluate

if TYPE_CHECKING:  # never imported at run time (evaluate's import scan reads only unindented imports)
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SYSTEM_PROMPT = (
    "You grade answers to questions about videos. Compare the predicted answer with the correct answer "
    "and decide whether the prediction means the same thing. Paraphrases and synonyms count as correct; "
    "judge the meaning, not the wording. Reply with a Python dictionary and nothing else: key 'pred' is "
    "'yes' or 'no' (is the prediction correct?), key 'score' is an integer from 0 (wrong) to 5 (perfect match)."
)
USER_TEMPLATE = (
    "Question: {question}\n"
    "Correct answer: {answer}\n"
    "Predicted answer: {prediction}\n"
    "Reply only with the dictionary, for example {{'pred': 'yes', 'score': 4}}."
)
RETRY_REMINDER = (
    "Your reply could not be read. Answer with exactly one line of the form "
    "{'pred': 'yes', 'score': 4} (pred is 'yes' or 'no', score an integer from 0 to 5)."
)
PREFILL = "{'pred': '"


@dataclass
class JudgeVerdict:
    """One judged example. `parsed` is False when every attempt failed and the fallback was used."""

    pred: str  # "yes" or "no"
    score: float  # 0..5
    parsed: bool = True
    attempts: int = 1
    raw: str = ""

    @property
    def correct(self) -> bool:
        return self.pred == "yes"


_YES = {"yes": "yes", "y": "yes", "true": "yes", "correct": "yes", "no": "no", "n": "no", "false": "no",
        "incorrect": "no", "wrong": "no"}
_NUM = r"(\d+(?:\.\d+)?)"


def _norm_pred(value) -> str | None:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return _YES.get(value.strip().strip("'\".,!").lower())
    return None


def _norm_score(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        match = re.fullmatch(r"\s*" + _NUM + r"\s*(?:/\s*5)?\s*", value)
        value = float(match.group(1)) if match else None
    if isinstance(value, (int, float)) and 0 <= value <= 5:
        return float(value)
    return None


def _from_mapping(obj) -> tuple[str, float] | None:
    if not isinstance(obj, dict):
        return None
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    pred = next((_norm_pred(lowered[k]) for k in ("pred", "prediction", "correct", "answer") if k in lowered), None)
    score = _norm_score(lowered["score"]) if "score" in lowered else None
    return (pred, score) if pred is not None and score is not None else None


def parse_judge_reply(text: str) -> tuple[str, float] | None:
    """``("yes"|"no", score)`` from a judge reply, or None when it holds no clear verdict and 0-5 score."""
    if not isinstance(text, str) or not text.strip():
        return None
    # 1. a dict literal or JSON object anywhere in the reply
    for block in re.findall(r"\{[^{}]*\}", text):
        for loader in (ast.literal_eval, json.loads):
            try:
                found = _from_mapping(loader(block))
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if found is not None:
                return found
    lowered = text.lower()
    # 2. key-value pairs with broken syntax: pred: yes ... score = 4
    pred_kv = re.search(r"['\"]?pred(?:iction)?['\"]?\s*[:=]\s*['\"]?\s*(yes|no|true|false)\b", lowered)
    score_kv = re.search(r"['\"]?score['\"]?\s*(?:[:=]|is|of)\s*['\"]?\s*" + _NUM, lowered)
    score_frac = re.search(_NUM + r"\s*(?:/|out of)\s*5\b", lowered)
    score = None
    for match in (score_kv, score_frac):
        if match is not None and score is None:
            score = _norm_score(float(match.group(1)))
    if pred_kv is not None and score is not None:
        return _YES[pred_kv.group(1)], score
    # 3. free text: the first standalone yes / no decides
    word = re.search(r"\b(yes|no)\b", lowered)
    if word is not None and score is not None:
        return word.group(1), score
    return None


class LLMJudge:
    """Judge answers with a local causal LM (greedy decoding, bounded retries).

    Args:
        model: a transformers causal LM (`AutoModelForCausalLM`), or None when `generate_fn` is given.
        tokenizer: its tokenizer; its chat template is used when it has one (plain "Role: text" lines otherwise).
        max_retries (`int`, defaults to 3): re-asks after an unparsable reply (so at most 1 + max_retries calls).
        max_new_tokens (`int`, defaults to 48): reply length budget per call.
        generate_fn (`Callable[[list[dict]], str]`, *optional*): replaces the model: takes the chat messages
            (a final "assistant" message is a pre-fill to continue) and returns the reply text. Used for
            API judges and scripted tests.
        prefill_from_attempt (`int`, defaults to 2): first attempt that pre-fills the reply with ``{'pred': '``.
            0 saves the free-form attempts with small local judges that rarely follow the format unaided.
    """

    def __init__(
        self,
        model: PreTrainedModel | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        max_retries: int = 3,
        max_new_tokens: int = 48,
        generate_fn: Callable[[list[dict]], str] | None = None,
        system_prompt: str = SYSTEM_PROMPT,
        user_template: str = USER_TEMPLATE,
        prefill_from_attempt: int = 2,
    ):
        if generate_fn is None and (model is None or tokenizer is None):
            raise ValueError("LLMJudge needs a model and its tokenizer, or a generate_fn")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        self.model, self.tokenizer = model, tokenizer
        self.max_retries, self.max_new_tokens = max_retries, max_new_tokens
        self.generate_fn = generate_fn
        self.system_prompt, self.user_template = system_prompt, user_template
        if not isinstance(prefill_from_attempt, int) or prefill_from_attempt < 0:
            raise ValueError(f"prefill_from_attempt must be a non-negative integer, got {prefill_from_attempt!r}")
        self.prefill_from_attempt = prefill_from_attempt

    @classmethod
    def from_pretrained(cls, name_or_path: str, gguf_file: str | None = None, max_retries: int = 3,
                        max_new_tokens: int = 48, prefill_from_attempt: int = 2, **model_kwargs) -> LLMJudge:
        """Load a judge LLM and its tokenizer (a local folder, a Hub id, or a folder + `gguf_file`)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        extra = {"gguf_file": gguf_file} if gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **extra)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **extra, **model_kwargs).eval()
        return cls(model, tokenizer, max_retries=max_retries, max_new_tokens=max_new_tokens,
                   prefill_from_attempt=prefill_from_attempt)

    def messages(self, question: str, answer: str, prediction: str, attempt: int = 0) -> list[dict]:
        """The chat for one attempt: attempts >= 1 add a format reminder, attempts >= `prefill_from_attempt`
        (default 2) end with the pre-filled reply ``{'pred': '``."""
        user = self.user_template.format(question=question, answer=answer, prediction=prediction)
        if attempt >= 1:
            user = user + "\n" + RETRY_REMINDER
        msgs = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]
        if attempt >= self.prefill_from_attempt:
            msgs.append({"role": "assistant", "content": PREFILL})
        return msgs

    def _generate(self, messages: list[dict]) -> str:
        import torch

        tok = self.tokenizer
        prefill = messages[-1]["content"] if messages[-1]["role"] == "assistant" else ""
        if getattr(tok, "chat_template", None):
            try:
                prompt = _render_chat(tok, messages, prefill)
            except Exception:  # templates without a system role (e.g. Gemma): fold it into the user turn
                merged = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
                prompt = _render_chat(tok, merged + messages[2:], prefill)
        else:
            lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages if m["role"] != "assistant"]
            prompt = "\n".join(lines) + "\nAssistant: " + prefill
        enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
        device = getattr(self.model, "device", None)
        if device is not None:
            enc = {k: v.to(device) for k, v in enc.items()}
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with torch.no_grad():
            out = self.model.generate(
                **enc, do_sample=False, max_new_tokens=self.max_new_tokens, pad_token_id=pad,
                temperature=None, top_p=None, top_k=None,
                stopping_criteria=_brace_stop(tok, enc["input_ids"].shape[1]),
            )
        reply = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return prefill + reply

    def judge(self, question: str, answer: str, prediction: str) -> JudgeVerdict:
        """Judge one example; never loops more than 1 + max_retries times."""
        raw = ""
        for attempt in range(self.max_retries + 1):
            msgs = self.messages(question, answer, prediction, attempt)
            if self.generate_fn is not None:
                raw = self.generate_fn(msgs)
                if msgs[-1]["role"] == "assistant" and not raw.startswith(msgs[-1]["content"]):
                    raw = msgs[-1]["content"] + raw
            else:
                raw = self._generate(msgs)
            found = parse_judge_reply(raw)
            if found is not None:
                return JudgeVerdict(found[0], found[1], True, attempt + 1, raw)
        return JudgeVerdict("no", 0.0, False, self.max_retries + 1, raw)

    def evaluate(self, questions: Sequence[str], answers: Sequence[str], predictions: Sequence[str]) -> dict:
        """Accuracy (yes rate), mean score, and how often the fallback was needed."""
        return judge_results([self.judge(q, a, p) for q, a, p in _zip_checked(questions, answers, predictions)])


def _render_chat(tokenizer, messages: list[dict], prefill: str) -> str:
    if prefill:
        return tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _brace_stop(tokenizer, prompt_len: int):
    """Stop once the reply holds a closing brace (a verdict dict is complete there). Cheaper than
    `generate(stop_strings=...)`, which pre-processes the whole vocabulary on every call (~15 s here)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _StopAtBrace(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            done = ["}" in tokenizer.decode(row[prompt_len:], skip_special_tokens=True) for row in input_ids]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_StopAtBrace()])


def _zip_checked(questions, answers, predictions):
    n = len(predictions)
    if len(questions) != n or len(answers) != n:
        raise ValueError(f"got {len(questions)} questions, {len(answers)} answers and {n} predictions; they must match")
    if n == 0:
        raise ValueError("no predictions to judge")
    for name, seq in (("questions", questions), ("answers", answers), ("predictions", predictions)):
        for i, x in enumerate(seq):
            if not isinstance(x, str):
                raise ValueError(f"{name}[{i}] must be a string, got {type(x).__name__}")
    return zip(questions, answers, predictions)


def judge_results(verdicts: Sequence[JudgeVerdict]) -> dict:
    """Aggregate verdicts: fallbacks count as "no" / 0 in accuracy and score, and are reported."""
    n = len(verdicts)
    return {
        "accuracy": sum(v.correct for v in verdicts) / n,
        "score": sum(v.score for v in verdicts) / n,
        "num_examples": n,
        "num_fallbacks": sum(not v.parsed for v in verdicts),
        "num_retries": sum(v.attempts - 1 for v in verdicts),
        "verdicts": [{"pred": v.pred, "score": v.score, "parsed": v.parsed, "attempts": v.attempts} for v in verdicts],
    }


_DESCRIPTION = "LLM-judge accuracy (yes rate) and mean 0-5 score for open-ended QA, ActivityNet-QA style."
_KWARGS = """
Args:
    predictions (`list[str]`): model answers.
    references (`list[str]`): correct answers.
    questions (`list[str]`): the questions.
    judge (`LLMJudge` or `Callable[[list[dict]], str]`): the judge, or a generate function wrapped in one.
    max_retries (`int`, defaults to 3): used when `judge` is a plain function.
Returns:
    accuracy, score, num_examples, num_fallbacks, num_retries, verdicts (per example).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class LlmJudge(evaluate.Metric):
    """`evaluate` wrapper around `LLMJudge.evaluate`."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Video-ChatGPT (Maaz et al., 2024) quantitative evaluation protocol; ActivityNet-QA (Yu et al., 2019).",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, questions=None, judge=None, max_retries=3):
        if questions is None:
            raise ValueError("llm_judge needs `questions=` (one per prediction)")
        if judge is None:
            raise ValueError("llm_judge needs `judge=`: an LLMJudge or a function messages -> reply text")
        if not hasattr(judge, "evaluate"):
            judge = LLMJudge(generate_fn=judge, max_retries=max_retries)
        return judge.evaluate(list(questions), list(references), list(predictions))
