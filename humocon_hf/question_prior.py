"""The question-prior baseline: what the question text alone gives, counted instead of trained.

A text-only model can do no better on a question than the answer most often given to that question in training (the
motion that would tell the answers apart is absent). So this baseline answers a question with the most common training
answer to the same question (the same words), else to the training questions that share the most words with it (word
overlap: a paraphrase finds its kind of question), and a question that lists its options with the option answered most
often, to that question or to any. It is VQA's "prior per question" / "nearest question" baseline; counting takes a
second where training the LLM on the questions without the motion (`evaluate.baseline: text_only`) takes as long as
stage 3, and it answered about as well (docs/results.md, "The question prior").
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping

from humocon_hf.io_utils import write_json_atomic
from humocon_hf.metrics.babel_qa_accuracy import normalize_answer
from humocon_hf.processing.answer_options import listed_options


def question_words(question: str) -> str:
    """The question as the prior matches it: lower-case words and numbers, single spaces."""
    return " ".join(re.findall(r"[a-z0-9]+", question.lower()))


def _row_question(row: Mapping) -> str:
    question = row.get("question")
    if question is None and row.get("conversations"):
        from humocon_hf.inference import question_text

        question = question_text(row["conversations"])
    if not isinstance(question, str):
        raise ValueError(f"a question-prior row needs a 'question' string (or 'conversations'), got keys {sorted(row)}")
    return question


def _most_common(counter: Mapping[str, int]) -> str:
    """The most frequent key; ties go to the alphabetically first, so answers do not depend on the order seen."""
    return min(counter.items(), key=lambda item: (-item[1], item[0]))[0]


class QuestionPriorBaseline:
    """Counts of the training answers per question; called on evaluation rows like any ``answer_fn``.

    Args:
        counts: ``{question words: {answer: count}}`` as `fit` builds them (`question_words`; answers as
            `normalize_answer` writes them).
        spellings: the answer each normalised answer is given back as (its most common training spelling).
    """

    def __init__(self, counts: Mapping[str, Mapping[str, int]], spellings: Mapping[str, str]):
        self.counts = {question: Counter(answers) for question, answers in counts.items()}
        self.spellings = dict(spellings)
        self.overall = Counter()
        self._by_word: dict[str, set[str]] = {}
        for question, answers in self.counts.items():
            self.overall.update(answers)
            for word in set(question.split()):
                self._by_word.setdefault(word, set()).add(question)

    @classmethod
    def fit(cls, rows: Iterable[Mapping]) -> QuestionPriorBaseline:
        """Count the answers of training rows (dicts with `question` or `conversations`, and `answer`)."""
        counts: dict[str, Counter] = {}
        spellings: dict[str, Counter] = {}
        n = 0
        for row in rows:
            answer = row.get("answer")
            if not isinstance(answer, str) or not normalize_answer(answer):
                raise ValueError(f"training row {n} has no answer (got {answer!r})")
            normalized = normalize_answer(answer)
            spellings.setdefault(normalized, Counter())[answer.strip()] += 1
            counts.setdefault(question_words(_row_question(row)), Counter())[normalized] += 1
            n += 1
        if n == 0:
            raise ValueError("the question prior needs at least one training question")
        return cls(counts, {a: _most_common(c) for a, c in spellings.items()})

    def nearest(self, words: str) -> Counter:
        """The answers to the training questions with the highest word overlap (Jaccard) with `words`, pooled."""
        asked = set(words.split())
        candidates = set().union(*(self._by_word.get(w, set()) for w in asked)) if asked else set()
        best, pooled = 0.0, Counter()
        for question in sorted(candidates):
            theirs = set(question.split())
            overlap = len(asked & theirs) / len(asked | theirs)
            if overlap > best:
                best, pooled = overlap, Counter(self.counts[question])
            elif overlap == best:
                pooled.update(self.counts[question])
        return pooled

    def answer(self, question: str) -> str:
        """The most common training answer to this question, else to its nearest training questions, else to any;
        for a question that lists its options, the option answered most often to it, else to any question."""
        words = question_words(question)
        options = listed_options(question)
        if options:
            wanted = [normalize_answer(o) for o in options]
            for counter in (self.counts.get(words), self.overall):
                if counter and any(counter[w] for w in wanted):
                    return options[max(range(len(wanted)), key=lambda i: (counter[wanted[i]], -i))]
            return options[0]
        best = _most_common(self.counts.get(words) or self.nearest(words) or self.overall)
        return self.spellings.get(best, best)

    def __call__(self, rows: list[dict]) -> list[str]:
        return [self.answer(_row_question(row)) for row in rows]

    # ------------------------------------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, {"kind": "question_prior", "counts": self.counts, "spellings": self.spellings})

    @classmethod
    def load(cls, path: str | os.PathLike) -> QuestionPriorBaseline:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not (isinstance(data, dict) and data.get("kind") == "question_prior" and isinstance(data.get("counts"), dict)):
            raise ValueError(f"{os.fspath(path)!r} is not a question-prior table (saved by QuestionPriorBaseline.save)")
        return cls(data["counts"], data.get("spellings") or {})
