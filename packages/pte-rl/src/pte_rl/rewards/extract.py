"""Find the final answer in a completion.

Order: the final ``\\boxed{...}`` run / ``\\fbox{...}`` (nested braces), else the last "the (final)
answer is ...", else the last "#### ...", else a choice letter opening the last or first line
(``A. Because B is not valid`` -> ``A``), else the last number in the text, else the last math
span (an answer with no digit: ``$E$``, ``$\\text{odd}$``). An empty
box is no answer (models copy the instruction's ``\\boxed{}``): it is dropped before any rule
runs. Every scan is linear in the text length; nothing here can hang on hostile input.
"""

from __future__ import annotations

import re

MAX_ANSWER = 1000  # characters: longer "answers" are not answers

# "the answers are" only before math or a number ("All answers are integers ..." is no answer)
_ANSWER_IS = re.compile(r"(?:answer\s*(?:is|:)|answers\s*are(?=\s*[-\d$\\(\[{]))\s*:?\s*", re.IGNORECASE)
_VERDICT = re.compile(r"(?:incorrect|correct|wrong|right|incomplete|as follows|below|above)\b", re.IGNORECASE)
_EMPTY_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{\s*\}")
# a number not glued to a word: AZYUK2A holds none; 12,000,023 and 2/3 are one number each; a unit
# may follow it, glued or squared (1,000.99m², 5 m^2: the 2 of m^2 is not the last number)
_NUMBER = re.compile(
    r"(?<![\w.\\])(?P<n>(?:(?<![)\]}])-)?(?:\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?|\.\d+))"
    r"(?:\s*(?:\\(?:text|mathrm)\s*\{\s*)?(?:km|cm|mm|m|in|ft)\s*\}?\s*(?:\^\s*\{?\s*[23]\s*\}?|[²³])(?![\w^])"
    r"|(?:km|cm|mm|m|kg|mg|g|ft|s|min|h)(?!\w)|(?!\w|\.\d))"
)
_CONNECTOR = re.compile(
    r"(?:\s|,|;|\$|&|\*|\\quad|\\qquad|\\[,;! ()\[\]]|\\(?:text|mbox|textrm)\s*\{\s*(?:and|or|,)?\s*\}"
    r"|(?<![a-zA-Z])(?:and|or)(?![a-zA-Z])|(?<![a-zA-Z\\])[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?\s*=)*"
)
_COPULA = re.compile(r"(?<![a-zA-Z\\])(?:is|are|was|equals|be)(?![a-zA-Z])")
_WORD = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}")
_REASON = re.compile(r"([^a-zA-Z]*?\d[^a-zA-Z]*?)\s*,?\s+(?:because|since|which|as|so|where|given|from)(?![a-zA-Z])")
MAX_BOXES = 20
_STATES_VALUE = re.compile(r"\d|\$|\\\(|\\\[")
# a choice letter that opens a line: "A. Because ...", "(B) is ...", "C) ...", "**D**.", or a line
# that is only the letter; a letter inside the sentence ("... B is not valid") never counts, nor
# "A:" (the answer of a Q:/A: transcript)
_CHOICE = re.compile(
    r"[ \t]*(?:\*\*)?(?:\(([A-E])\)|([A-E])[.)]|([A-E])(?=\*\*)|([A-E])(?=[ \t]*(?:\n|$)))(?:\*\*)?\.?(?=\s|$)"
)


def _brace_matches(text: str) -> dict[int, int]:
    """Index of each "{" -> index of its "}" (one linear pass; unmatched braces are absent)."""
    stack, match = [], {}
    for i, c in enumerate(text):
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            match[stack.pop()] = i
    return match


def _boxes_backwards(text: str):
    """Yield ``(start, end, content)`` of well-formed boxes, last first (each rfind moves left;
    braces are matched once for the whole text, so many unclosed boxes cost one pass)."""
    pos = len(text)
    match = None
    boxed_at, fbox_at = text.rfind("\\boxed"), text.rfind("\\fbox")
    while True:
        if boxed_at >= pos:  # each search resumes left of the last hit: linear overall
            boxed_at = text.rfind("\\boxed", 0, pos)
        if fbox_at >= pos:
            fbox_at = text.rfind("\\fbox", 0, pos)
        at = max(boxed_at, fbox_at)
        if at < 0:
            return
        j = at + (6 if text.startswith("\\boxed", at) else 5)
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            if match is None:
                match = _brace_matches(text)
            close = match.get(j)
            if close is not None and close - j < 20 * MAX_ANSWER:
                yield at, close + 1, text[j + 1 : close]
        elif j > at + 5 and j < len(text):  # "\boxed 5": up to the next space or $
            m = re.match(r"[^\s$]+", text[j : j + MAX_ANSWER])
            if m:
                yield at, j + m.end(), m.group(0)
        pos = at


def last_boxed(text: str) -> str | None:
    """Content of the last well-formed \\boxed{...} or \\fbox{...} (or ``\\boxed 5``)."""
    for _, _, inner in _boxes_backwards(text):
        return inner
    return None


def box_contents(text: str) -> list[str]:
    """Contents of the final run of adjacent boxes, in order: ``\\boxed{1}, \\boxed{2} and \\boxed{3}``
    gives three, so does ``x = \\boxed{1}`` or ``x = \\boxed{2}``; boxes separated by anything but
    commas, ``and``/``or``, ``\\quad``, spaces, ``$``, ``\\text{ and }`` or a one-letter ``x =`` are not
    one run (the last box alone)."""
    return _box_run(text)[0]


def reference_boxes(answer: str) -> list[str]:
    """The final boxes of a reference answer, in order: boxes at most two words apart are one run
    (``\\boxed{3} apples and \\boxed{5} pears``; a reference boxes nothing but the answer, so
    prose between its boxes is a label, not a step); farther apart, the last box alone."""
    return [b.strip() for b in _box_run(answer, _joins_reference)[0]]


def _joins_completion(sep: str) -> bool:
    return len(sep) <= 80 and _CONNECTOR.fullmatch(sep) is not None


def _joins_reference(sep: str) -> bool:
    return len(sep) <= 24 and len(re.findall(r"[a-zA-Z]+", sep)) <= 2


def _box_run(text: str, joins=_joins_completion) -> tuple[list[str], int]:
    """The final run of boxes (consecutive boxes whose separator ``joins``) and where the last box
    ends (-1: no box), from one pass over the braces."""
    out: list[str] = []
    prev_start, last_end = None, -1
    for start, end, inner in _boxes_backwards(text):
        if prev_start is not None and not joins(text[end:prev_start]):
            break
        if prev_start is None:
            last_end = end
        out.append(inner)
        prev_start = start
        if len(out) >= MAX_BOXES:
            break
    return out[::-1], last_end


def _sentence(line: str) -> str:
    """The line up to its first full stop outside math (not a decimal point: ``3.5`` stays)."""
    dollars, paren = 0, 0
    for i, c in enumerate(line):
        if c == "$":
            dollars ^= 1
        elif c == "\\" and line.startswith(("\\(", "\\["), i):
            paren += 1
        elif c == "\\" and line.startswith(("\\)", "\\]"), i):
            paren = max(0, paren - 1)
        elif c == "." and not dollars and not paren and not line[i + 1 : i + 2].isdigit():
            return line[:i]
    return line


def _math_spans(line: str) -> list[tuple[int, int]]:
    """(start, end) of the inner text of $..$, $$..$$, \\(..\\), \\[..\\] spans in ``line`` (linear)."""
    spans, i, n = [], 0, len(line)
    while i < n:
        if line.startswith("$$", i):
            j = line.find("$$", i + 2)
            k = 2
        elif line[i] == "$":
            j = line.find("$", i + 1)
            k = 1
        elif line.startswith(("\\(", "\\["), i):
            j = line.find("\\)" if line[i + 1] == "(" else "\\]", i + 2)
            k = 2
        else:
            i += 1
            continue
        if j < 0:
            break
        spans.append((i + k, j))
        i = j + k
    return spans


def _answer_sentence(sentence: str) -> str:
    """"The largest $n$ is 34" -> "34"; prose around math -> the last math span."""
    spans = _math_spans(sentence)
    outside = sentence
    for a, b in reversed(spans):
        outside = outside[: a] + " " * (b - a) + outside[b:]
    copulas = list(_COPULA.finditer(outside))
    if copulas:
        rest = sentence[copulas[-1].end() :].strip()
        if rest and re.search(r"\d|\$|\\\(", rest):
            sentence, spans = rest, _math_spans(rest)
            outside = sentence
            for a, b in reversed(spans):
                outside = outside[:a] + " " * (b - a) + outside[b:]
    words = [w for w in _WORD.findall(outside) if w.lower() not in ("and", "or")]
    if spans and words:
        a, b = spans[-1]
        return sentence[a:b].strip()
    if words and not spans:  # "Tom finished the race 7 minutes later": its one number
        numbers = [m.group("n") for m in _NUMBER.finditer(sentence[: 4 * MAX_ANSWER])]
        if len(numbers) == 1:
            return numbers[0]
    m = _REASON.match(sentence[:200])  # "5, because 2+3=5" -> "5" (bounded: no long backtracking)
    return (m.group(1) if m else sentence).strip()


def _last_number(text: str) -> str | None:
    """The last number not glued to a word (``AZYUK2A`` has none); inside a math span, the span."""
    last = None
    for m in _NUMBER.finditer(text):
        last = m
    if last is None:
        return None
    p = last.start()
    line_start = text.rfind("\n\n", 0, p) + 1
    line_end = text.find("\n\n", p)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    spans = _math_spans(line)
    for a, b in spans:
        if a <= p - line_start < b and b - a <= 200:
            return line[a:b].strip()
    bare = _bare_latex(text, p)
    if bare is not None:
        return bare
    chain = _chained_span(line, spans, p - line_start)
    return chain if chain is not None else last.group("n")


def _bare_latex(text: str, p: int) -> str | None:
    """A last line of LaTeX written without ``$`` (``-\\frac{10}{9}``) holding the number at ``p``:
    the whole line, not the number (``9``). Only when the text has no math span and the line no prose."""
    start = text.rfind("\n", 0, p) + 1
    end = text.find("\n", p)
    line = text[start : end if end >= 0 else len(text)].strip()
    if ("\\" not in line or len(line) > 200 or text[end if end >= 0 else len(text):].strip()
            or line.count("{") != line.count("}") or "\\boxed" in line or "\\fbox" in line
            or _WORD.search(line) or "$" in text or "\\(" in text or "\\[" in text):
        return None
    return line.rstrip(".").strip()


def _chained_span(line: str, spans: list[tuple[int, int]], p: int) -> str | None:
    """``$a$ = b$`` or ``$a$ = b`` (a model's stray dollar): the number at ``p`` lies in ``= b``
    right after a math span, so the answer is the chain ``a = b`` (whose last side counts)."""
    before = [s for s in spans if s[1] <= p]
    if not before:
        return None
    a, b = before[-1]
    close = b + (1 if line[a - 1] == "$" and not line.startswith("$$", a - 2) else 2)  # $ | $$ \) \]
    end = min(x for x in (line.find("$", close), line.find("\n", close), len(line)) if x >= 0)
    rest = line[close:end]
    if end <= p or len(rest) > 200 or not rest.lstrip().startswith("=") or _WORD.search(rest):
        return None
    return (line[a:b] + " " + rest).strip()


def extract_answer(text: str) -> tuple[str | None, str]:
    """Return ``(answer, method)``; method is boxed, boxes, answer-is, hashes, choice, last-number,
    last-math or none.

    Several final boxes (see ``box_contents``) come back as ``\\boxed{a}, \\boxed{b}``: the
    verifier reads them as one unordered answer when the gold is a list or set, else the last."""
    text = _EMPTY_BOX.sub(" ", text)
    boxes, last_end = _box_run(text)
    if boxes:
        # a box, unless "the final answer is ..." comes after it (an intermediate result was boxed);
        # only the text after the box is scanned, so a boxed completion costs what it did
        after = text[last_end:][-20000:]
        later = [m for m in _ANSWER_IS.finditer(after) if not _VERDICT.match(after, m.end())]
        # ... that states a value ("Answer: the box holds the result" does not replace the box)
        if not any(_STATES_VALUE.search(_sentence(after[m.end():].split("\n", 1)[0][:4 * MAX_ANSWER]))
                   for m in later):
            if len(boxes) >= 2:
                return ", ".join("\\boxed{" + b + "}" for b in boxes), "boxes"
            return boxes[0], "boxed"
    tail20k = text[-20000:]
    # "Your answer is correct." is a verdict, not an answer: such matches are ignored
    matches = [m for m in _ANSWER_IS.finditer(tail20k) if not _VERDICT.match(tail20k, m.end())]
    if matches:
        tail = tail20k[matches[-1].end() :]
        line = _sentence(tail.split("\n", 1)[0].strip()[: 4 * MAX_ANSWER]).strip()
        line = _answer_sentence(line) if line else line
        if line:
            return line[:MAX_ANSWER], "answer-is"
    at = text.rfind("####")
    if at >= 0:
        line = text[at + 4 :].strip().split("\n", 1)[0].strip()
        if line:
            return line[:MAX_ANSWER], "hashes"
    choice = _choice_letter(text)
    if choice is not None:
        return choice, "choice"
    number = _last_number(tail20k)
    if number is not None:
        return number, "last-number"
    span = _last_span(tail20k)
    if span is not None:
        return span, "last-math"
    return None, "none"


def _last_span(text: str) -> str | None:
    """The last non-empty math span (``$E$``, ``$$f(y) = y$$``), for answers without a digit."""
    for a, b in reversed(_math_spans(text)):
        inner = text[a:b].strip()
        if inner and b - a <= MAX_ANSWER:
            return inner
    return None


def _choice_letter(text: str) -> str | None:
    """The choice letter opening the last line, else the first line (see ``_CHOICE``)."""
    body = text.rstrip()
    last = body.rfind("\n") + 1
    for start in (last, len(text) - len(text.lstrip())):
        m = _CHOICE.match(body, start)
        if m:
            return next(g for g in m.groups() if g)
    return None
