"""Find the final answer in a completion.

Order: the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces), else the last "the (final)
answer is ...", else the last "#### ...", else the last number in the text (fallback). An empty
box is no answer (models copy the instruction's ``\\boxed{}``): it is dropped before any rule
runs. Every scan is linear in the text length; nothing here can hang on hostile input.
"""

from __future__ import annotations

import re

MAX_ANSWER = 1000  # characters: longer "answers" are not answers

_ANSWER_IS = re.compile(r"answer\s*(?:is|:)\s*:?\s*", re.IGNORECASE)
_VERDICT = re.compile(r"(?:incorrect|correct|wrong|right|incomplete|as follows|below|above)\b", re.IGNORECASE)
_EMPTY_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{\s*\}")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def _braced(text: str, start: int) -> str | None:
    """Content of the brace group opening at ``text[start] == '{'`` (None if unbalanced)."""
    depth = 0
    for i in range(start, min(len(text), start + 20 * MAX_ANSWER)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last well-formed \\boxed{...} or \\fbox{...} (or ``\\boxed 5``)."""
    pos = len(text)
    while True:
        at = max(text.rfind("\\boxed", 0, pos), text.rfind("\\fbox", 0, pos))
        if at < 0:
            return None
        j = at + (6 if text.startswith("\\boxed", at) else 5)
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            inner = _braced(text, j)
            if inner is not None:
                return inner
        elif j > at + 5 and j < len(text):  # "\boxed 5": up to the next space or $
            m = re.match(r"[^\s$]+", text[j : j + MAX_ANSWER])
            if m:
                return m.group(0)
        pos = at


def extract_answer(text: str) -> tuple[str | None, str]:
    """Return ``(answer, method)``; method is boxed, answer-is, hashes, last-number or none."""
    text = _EMPTY_BOX.sub(" ", text)
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed, "boxed"
    # "Your answer is correct." is a verdict, not an answer: such matches are ignored
    matches = [m for m in _ANSWER_IS.finditer(text[-20000:]) if not _VERDICT.match(text[-20000:], m.end())]
    if matches:
        tail = text[-20000:][matches[-1].end() :]
        line = tail.split("\n", 1)[0].strip()
        line = re.split(r"(?<!\d)\.(?!\d)|\.$", line, maxsplit=1)[0].strip()
        if line:
            return line[:MAX_ANSWER], "answer-is"
    at = text.rfind("####")
    if at >= 0:
        line = text[at + 4 :].strip().split("\n", 1)[0].strip()
        if line:
            return line[:MAX_ANSWER], "hashes"
    numbers = _NUMBER.findall(text[-20000:])
    if numbers:
        return numbers[-1], "last-number"
    return None, "none"
