"""LLM-judge protocol for open-ended video QA (an `evaluate` module: `evaluate.load(<this folder>)`)."""

import os

from .llm_judge import (
    PREFILL,
    RETRY_REMINDER,
    SYSTEM_PROMPT,
    USER_TEMPLATE,
    JudgeVerdict,
    LLMJudge,
    LlmJudge,
    judge_results,
    parse_judge_reply,
)

METRIC_PATH = os.path.dirname(os.path.abspath(__file__))

__all__ = [
    "METRIC_PATH",
    "PREFILL",
    "RETRY_REMINDER",
    "SYSTEM_PROMPT",
    "USER_TEMPLATE",
    "JudgeVerdict",
    "LLMJudge",
    "LlmJudge",
    "judge_results",
    "parse_judge_reply",
]
