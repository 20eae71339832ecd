"""Answers kept to the options a question lists ("Which way does the person turn, left or right?").

A tuned model can answer outside the options it is offered ("forward" to "left or right?"). Training on more option
questions fixes that only at a cost elsewhere (issue 28: +1 point of option compliance for -7 points on the
procedural benchmark), so the options are enforced where the answer is produced instead: a
`transformers.LogitsProcessor` lets each row's greedy answer be only one of its options followed by the end of the
turn. Rows without options generate freely in the same batch.

`listed_options` reads the options from a question's text; `AnswerOptionsLogitsProcessor` enforces them. Exported
with checkpoints for `trust_remote_code=True`: external libraries and same-folder modules only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

__all__ = ["AnswerOptionsLogitsProcessor", "listed_options"]

# Words that end a backward scan for the first option: the question's own verb and subject, never an option.
_QUESTION_WORDS = frozenset(
    "is are was were does do did doing done it this that person he she they someone somebody which what whether who "
    "how where why when".split())
# Leading words an option is stated with but answered without ("the left hand" -> "left hand").
_LEADING_WORDS = frozenset("the a an to towards toward with using his her their its".split())
# An option is a short phrase; a longer "or" clause is not a list of answers.
_MAX_OPTION_WORDS = 3
# Explicit lists: "Choose from a or b." (lists after a colon, "Options: a, b or c.", are read as any colon's).
_CHOOSE_FROM = re.compile(r"\b(?:choose|pick|select)(?: one)? from\s+", re.IGNORECASE)
# Questions opening with these put their options after a comma: "Which way does the person turn, left or right?"
_WH_WORDS = frozenset("which what where how who".split())


def _words(text: str) -> list[str]:
    # "take/pick something up" (a BABEL-QA answer) keeps its slash: three words, one option
    return re.findall(r"[a-z0-9][a-z0-9'/\-]*", text.lower())


def _strip_leading(words: list[str]) -> list[str]:
    while words and words[0] in _LEADING_WORDS:
        words = words[1:]
    return words


def _options_of_list(clause: str, bounded_start: bool) -> list[str] | None:
    """The options of "a, b or c" (`bounded_start`: the clause starts where the first option does), else None."""
    if " or " not in f" {clause} ":
        return None
    # "a, b or c", "a, b, or c", "a or b, or c": commas and "or" both separate options
    items = [p for p in re.split(r"\s*,\s*(?:or\s+)?|\s+or\s+", clause.strip()) if p]
    if len(items) < 2:
        return None
    rest = [_strip_leading(_words(p)) for p in items[1:]]
    if any(not w or len(w) > _MAX_OPTION_WORDS for w in rest):
        return None
    first_words = _words(items[0])
    if bounded_start:
        first = [_strip_leading(first_words)] if len(first_words) <= _MAX_OPTION_WORDS else []
    else:
        # Where the first option starts is ambiguous in plain text ("turn left or right" vs "pick up or throw"):
        # every reading from the shortest other option's length up to the question's own words is offered, and the
        # model's likelihood picks among them.
        shortest = min(len(w) for w in rest)
        first = []
        for n in range(1, _MAX_OPTION_WORDS + 1):
            if n > len(first_words) or first_words[-n] in _QUESTION_WORDS:
                break
            words = _strip_leading(first_words[-n:])
            if len(words) >= shortest and words not in first:
                first.append(words)
    if not first or not all(first):
        return None
    options = [" ".join(w) for w in first + rest]
    return list(dict.fromkeys(options)) if len(set(options)) > 1 else None


def listed_options(question: str) -> list[str] | None:
    """The answers a question offers, lower-cased, or None when it lists none.

    Reads "Options: a, b or c." / "Choose from a or b." / "Pick one: ...", a list after a colon ("Which of these
    does the person do: walk, run or jump?"), a list before one ("Left or right: which way is the turn?"), and a
    closing "..., a or b?" ("Which way does the person turn, left or right?", "Is it the left hand or the right
    hand?" -> ["left hand", "right hand"]). Where the first option's start is ambiguous ("Does the person turn left
    or right?") each reading is returned (["left", "turn left", "right"]). Leading articles and prepositions are
    dropped ("to the left" -> "left").
    """
    if not isinstance(question, str):
        raise TypeError(f"question must be a string, got {type(question).__name__}")
    text = " ".join(question.split())
    sentences = [s.strip() for s in re.split(r"(?<=[.?!])\s+", text) if s.strip()]
    for sentence in sentences:  # an explicit list anywhere in the question
        body = sentence.rstrip(".?!").strip()
        choose = _CHOOSE_FROM.search(body)
        if choose:
            found = _options_of_list(body[choose.end():], bounded_start=True)
            if found:
                return found
        before, colon, after = body.partition(":")
        if colon:
            for clause in (after.strip(), before.strip()):
                found = _options_of_list(clause, bounded_start=True)
                if found:
                    return found
    for sentence in reversed(sentences):  # else a question that closes on "... a or b?"
        body = sentence.rstrip("?").strip()
        if not sentence.endswith("?") or " or " not in body:
            continue
        opening = _words(body)[:1]
        cut = body.rfind(" or ")
        if opening and opening[0] in _WH_WORDS and "," in body[:cut]:
            return _options_of_list(body[body.find(",") + 1:].strip(), bounded_start=True)
        return _options_of_list(body, bounded_start=False)
    return None


class AnswerOptionsLogitsProcessor(LogitsProcessor):
    """Keeps each row's generated answer to one of its options, then the end of the turn.

    Args:
        tokenizer: the processor's tokenizer (options are tokenized as the answer text the model produces).
        options (`list[list[str] | None]`): per batch row, the allowed answers, or None for a free answer.
        prompt_length (`int`): the width of `input_ids` given to `generate` (left-padded batches: generation starts
            at this column in every row).
        end_token_ids (`Sequence[int]`): the tokens that end an answer (the generation config's `eos_token_id`).
        pad_token_id (`int`, *optional*): what `generate` appends to rows that have finished.
        num_beams (`int`): rows of the batch are `num_beams` consecutive beams of one question.
    """

    def __init__(self, tokenizer, options: Sequence[Sequence[str] | None], prompt_length: int,
                 end_token_ids: Sequence[int], pad_token_id: int | None = None, num_beams: int = 1):
        if not end_token_ids:
            raise ValueError("end_token_ids: at least one token must end an answer")
        self.prompt_length = int(prompt_length)
        self.end_token_ids = [int(t) for t in end_token_ids]
        self.finished_ids = list(dict.fromkeys(self.end_token_ids + ([int(pad_token_id)] if pad_token_id is not None
                                                                     else [])))
        self.num_beams = int(num_beams)
        self.tries: list[dict | None] = []
        for i, row in enumerate(options):
            if row is None:
                self.tries.append(None)
                continue
            texts = [str(o).strip() for o in row if str(o).strip()]
            if not texts:
                raise ValueError(f"options of row {i}: expected at least one non-empty option, got {list(row)!r}")
            trie: dict = {}
            for text in texts:
                node = trie
                for token in tokenizer(text, add_special_tokens=False)["input_ids"]:
                    node = node.setdefault(int(token), {})
                node[None] = True  # an option ends here
            self.tries.append(trie)

    def allowed_tokens(self, row: int, generated: Sequence[int]) -> list[int] | None:
        """The tokens row `row` may produce next after `generated`, or None for any token."""
        trie = self.tries[row // self.num_beams]
        if trie is None:
            return None
        node = trie
        for token in generated:
            if token in self.finished_ids and node.get(None):
                return self.finished_ids  # answered; generate pads until every row is done
            node = node.get(int(token))
            if node is None:
                return self.finished_ids  # cannot happen under this processor; end rather than fail
        allowed = [t for t in node if t is not None]
        return allowed + self.end_token_ids if node.get(None) else allowed

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.clone()
        generated = input_ids[:, self.prompt_length:].tolist()
        for row, tokens in enumerate(generated):
            allowed = self.allowed_tokens(row, tokens)
            if allowed is None:
                continue
            keep = scores[row, allowed]
            scores[row] = float("-inf")
            scores[row, allowed] = keep
        return scores
