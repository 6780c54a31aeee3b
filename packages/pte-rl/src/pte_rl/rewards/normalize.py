"""Normalise an answer string (LaTeX or plain) into a canonical, parseable form.

Rules (documented in docs/rewards.md):
- ``\\dfrac \\tfrac \\cfrac`` -> ``\\frac``; ``\\frac12`` / ``\\frac1{2}`` -> ``\\frac{1}{2}``
- ``\\left \\right``, spacing commands, ``$``, ``\\( \\)`` / ``\\[ \\]`` delimiters, trailing periods
  are dropped
- ``\\text{..} \\textnormal{..} \\mathrm{..} \\textbf{..} \\mbox{..}`` keep their content; unit words
  and currency after a number are dropped (``10 cm`` -> ``10``, ``\\$5`` -> ``5``)
- degrees (``^\\circ``, ``°``, "degrees") are dropped; ``\\%``, "percent", "pct", "percentage" ->
  ``%`` (percent rule: see verify)
- thousands separators (``1,000,000``, ``14{,}916``, ``11,\\!111``) are removed only when the whole
  answer is one such number: ``(12,102)`` stays a pair
- relations are spelled one way: ``\\leq \\geq < > \\neq`` (from ``<= \\le ≤ \\leqslant \\lt`` ...)
- ``a \\approx b`` reads as ``a = b``; a chain ``z = 3+3 = 6`` is its last side; a label left-hand
  side is dropped (``x = 5``, ``AB = 4``, ``|AB| = 1``, ``(p,q) = (3,2)``, ``x_1 = 2``,
  ``V_1:V_2 = 11:21``), also in each item of a list (``AB=4, CD=5`` -> ``4, 5``); a left-hand side
  that is an expression (``2x+4y-3=0``) makes an equation and is kept. ``keep_lhs=True`` keeps
  every left-hand side (used to compare equations with each other)
- list words: ``1 and 2 and 3``, ``(11,7) or (7,11)`` -> comma lists (when no other prose is there)
- ``\\begin{array}{..}..\\end{array}`` (in ``()`` or ``[]``) is a ``pmatrix``
- a completion's several final boxes (``\\boxed{1}, \\boxed{2}``, see extract) normalise to the last
"""

from __future__ import annotations

import re

from .extract import box_contents

_UNITS = (
    "units?|square units?|sq units?|cm|centimeters?|m|meters?|km|kilometers?|mm|millimeters?|in|"
    "inch(?:es)?|ft|feet|foot|yards?|yd|miles?|mi|mph|kg|kilograms?|g|grams?|mg|lbs?|pounds?|"
    "ounces?|oz|l|liters?|litres?|ml|milliliters?|s|sec|seconds?|min|minutes?|h|hrs?|hours?|"
    "days?|weeks?|months?|years?|dollars?|cents?|euros?|people|persons?|students?|apples?|"
    "degrees?|cm\\^2|m\\^2|cm\\^3|m\\^3|ft\\^2|in\\^2|sq\\.? ?ft"
)
_TRAILING_UNIT = re.compile(rf"(?<=[\d}}\s])\s*(?:{_UNITS})\.?$", re.IGNORECASE)
_PERCENT_WORD = re.compile(r"(?<=[\d}])\s*(?:percentage|percent|pct)\.?$", re.IGNORECASE)
_TEXT_CMD = re.compile(
    r"\\(?:text|textbf|textit|textnormal|textrm|textsf|texttt|mathrm|mathbf|mathsf|mathit|mbox|"
    r"operatorname|boldsymbol|bm)\s*\{([^{}]*)\}"
)
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_FRAC_SHORT = re.compile(r"\\frac\s*(\d)\s*(\d)")
_FRAC_HALF = re.compile(r"\\frac\s*(\d)\s*(?=\{)")
_FRAC_HALF2 = re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\d)")
_SQRT_SHORT = re.compile(r"\\sqrt\s*(\d+|[a-zA-Z])")
_DELIMS = re.compile(r"(?<!\\)\\[()\[\]]")
_ARRAY = re.compile(r"[(\[]?\s*\\begin\{array\}\s*\{[^{}]*\}(.*?)\\end\{array\}\s*[)\]]?", re.S)
_RELATIONS = (
    (re.compile(r"<=|≤|⩽|\\leqslant|\\leqq|\\leq(?![a-zA-Z])|\\le(?![a-zA-Z])"), " \\leq "),
    (re.compile(r">=|≥|⩾|\\geqslant|\\geqq|\\geq(?![a-zA-Z])|\\ge(?![a-zA-Z])"), " \\geq "),
    (re.compile(r"!=|≠|\\neq(?![a-zA-Z])|\\ne(?![a-zA-Z])"), " \\neq "),
    (re.compile(r"\\lt(?![a-zA-Z])"), " < "),
    (re.compile(r"\\gt(?![a-zA-Z])"), " > "),
    (re.compile(r"\\approx(?![a-zA-Z])|≈|\\simeq(?![a-zA-Z])"), " = "),
)
RELATION = re.compile(r"\\leq|\\geq|\\neq|<|>")
# a label: a name (letters, subscripts, primes), |name|, name(args), \angle/\overline names,
# a tuple (p,q) or ratio V_1:V_2 of names -- never an expression with operators or numbers
_NAME = r"(?:\\(?:angle|overline|overrightarrow|triangle|widehat|hat|vec|bar)\s*\{?\s*)?[a-zA-Z]+\}?'*" \
        r"(?:_\{?[a-zA-Z0-9]+\}?|_[a-zA-Z0-9])?'*(?:\([a-zA-Z0-9, ]*\))?"
_LABEL_ITEM = rf"(?:m\s*)?(?:{_NAME}|\|\s*{_NAME}\s*\|)"
_LABEL = re.compile(
    rf"\s*(?:{_LABEL_ITEM}(?:\s+{_LABEL_ITEM}){{0,3}}|\(\s*{_LABEL_ITEM}(?:\s*,\s*{_LABEL_ITEM})+\s*\)"
    rf"|{_LABEL_ITEM}(?:\s*:\s*{_LABEL_ITEM})+)\s*"
)
_PROSE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")
_LIST_WORD = re.compile(r"\s*,?\s*(?<![\\a-zA-Z])(?:and|or)(?![a-zA-Z])\s*")


def split_top(s: str, seps: str = ",") -> list[str]:
    """Split at separators outside any bracket (linear)."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c in seps and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def is_label(side: str) -> bool:
    return len(side) <= 80 and _LABEL.fullmatch(side) is not None


def _has_letters(side: str) -> bool:
    return re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", side)) is not None


def drop_labels(s: str, keep_lhs: bool = False) -> str:
    """Chains to their last side and label left-hand sides dropped, item by item."""
    if "=" not in s or RELATION.search(s):
        return s
    out = []
    for item in split_top(s):
        sides = split_top(item, "=")
        if len(sides) < 2 or not all(sides):
            out.append(item)
            continue
        if len(sides) > 2:  # a chain z = 3+3 = 6 is judged by its last side
            sides = [sides[0], sides[-1]] if is_label(sides[0]) else [sides[-1]]
        if len(sides) == 1:
            out.append(sides[0])
            continue
        lhs, rhs = sides
        if not _has_letters(lhs) or (not keep_lhs and is_label(lhs)):
            out.append(rhs)
        else:
            out.append(f"{lhs} = {rhs}")
    return ", ".join(out)


def normalize(s: str, keep_lhs: bool = False) -> str:
    s = s.strip()
    if s.startswith(("\\boxed", "\\fbox")):  # several final boxes: the last one (see verify)
        boxes = box_contents(s)
        if boxes:
            s = boxes[-1].strip()
    s = s.replace("\n", " ").replace("{,}", ",")
    s = re.sub(r"(\d),\\!\s*(?=\d)", r"\1,", s)  # 11,\! 111
    s = s.replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\:", "")
    s = s.replace("\\quad", " ").replace("\\qquad", " ").replace("~", " ")
    s = re.sub(r"(?<!\\)\\ ", " ", s)  # "\ " spacing, but not the "\\" row break
    s = s.replace("\\left", "").replace("\\right", "").replace("\\displaystyle", "")
    s = _DELIMS.sub(" ", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\cfrac", "\\frac")
    s = s.replace("−", "-")
    for pattern, repl in _RELATIONS:
        s = pattern.sub(lambda _, r=repl: r, s)
    s = s.replace("\\$", "").replace("$", "")
    for _ in range(3):  # nested \text{\textbf{..}}
        s = _TEXT_CMD.sub(r"\1", s)
    s = s.replace("\\%", "%").replace("％", "%")
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|°|\\circ|\\degree", "", s)
    s = s.replace("\\dollars", "").replace("\\cdot", "*").replace("\\times", "*").replace("\\div", "/")
    s = s.strip().rstrip(".").strip().strip("*").strip()  # markdown **42**
    s = _PERCENT_WORD.sub("%", s)
    s = _TRAILING_UNIT.sub("", s).strip()
    s = re.sub(r"^(?:\\\$|\$|€|£|USD\s*|Rs\.?\s*)", "", s).strip()
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_HALF.sub(r"\\frac{\1}", s)
    s = _FRAC_HALF2.sub(r"\\frac\1{\2}", s)
    s = _SQRT_SHORT.sub(r"\\sqrt{\1}", s)
    if "\\begin{array}" in s:
        s = _ARRAY.sub(lambda m: "\\begin{pmatrix}" + m.group(1) + "\\end{pmatrix}", s)
    if _THOUSANDS.fullmatch(s):  # only a whole answer "12,000,023" is one number
        s = s.replace(",", "")
    if _LIST_WORD.search(s) and all(w == "and" for w in _PROSE.findall(s)):
        s = _LIST_WORD.sub(", ", s).strip(" ,")
    if ";" in s and len(split_top(s)) == 1:  # -12;-11;-10
        s = ", ".join(split_top(s, ";"))
    s = drop_labels(s, keep_lhs)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"^(-?\d+(?:\.\d+)?)[eE]([-+]?\d+)$", r"\1*10^{\2}", s)  # 4.5e33
    if s.startswith("{") and s.endswith("}") and _balanced_outer(s):
        s = s[1:-1].strip()
    return s


def _balanced_outer(s: str) -> bool:
    depth = 0
    for i, c in enumerate(s):
        depth += (c == "{") - (c == "}")
        if depth == 0 and i < len(s) - 1:
            return False
    return depth == 0
