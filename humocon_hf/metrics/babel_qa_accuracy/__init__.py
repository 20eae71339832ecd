"""BABEL-QA accuracy metric (an `evaluate` module: `evaluate.load(<this folder>)`) and its pure-Python core."""

import os

from .babel_qa_accuracy import (
    PHRASE_SYNONYMS,
    QUERY_TYPES,
    RELATION_TYPES,
    WORD_SYNONYMS,
    BabelQaAccuracy,
    compute_babel_qa_accuracy,
    normalize_answer,
)

METRIC_PATH = os.path.dirname(os.path.abspath(__file__))

__all__ = [
    "METRIC_PATH",
    "PHRASE_SYNONYMS",
    "QUERY_TYPES",
    "RELATION_TYPES",
    "WORD_SYNONYMS",
    "BabelQaAccuracy",
    "compute_babel_qa_accuracy",
    "normalize_answer",
]
