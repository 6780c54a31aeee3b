"""Normalise an answer string (LaTeX or plain) into a canonical, parseable form.

Rules (documented in docs/rewards.md):
- ``\\dfrac \\tfrac \\cfrac`` -> ``\\frac``; ``\\frac12`` / ``\\frac1{2}`` -> ``\\frac{1}{2}``
- ``\\left \\right``, spacing commands, ``$``, ``\\( \\)`` / ``\\[ \\]`` delimiters, trailing periods
  are dropped
- ``\\text{..} \\textnormal{..} \\mathrm{..} \\textbf{..} \\mbox{..}`` keep their content; unit words
  and currency after a number are dropped (``10 cm`` -> ``10``, ``\\$5`` -> ``5``), also squared or
  cubed length units (``1,000.99m²``, ``m^{2}``, ``2,500 square meters``)
- degrees (``^\\circ``, ``°``, "degrees") are dropped; ``\\%``, "percent", "pct", "percentage" ->
  ``%`` (percent rule: see verify)
- thousands separators (``1,000,000``, ``14{,}916``, ``11,\\!111``) are removed only when the whole
  answer is one such number: ``(12,102)`` stays a pair
- relations are spelled one way: ``\\leq \\geq < > \\neq`` (from ``<= \\le ≤ \\leqslant \\lt`` ...)
- ``a \\approx b`` reads as ``a = b`` (verify reads the exact ``a`` first); a chain ``z = 3+3 = 6``
  is its last side, as is ``6*7 = 42`` (both sides numbers); a label left-hand side is dropped
  (``x = 5``, ``AB = 4``, ``|AB| = 1``, ``(p,q) = (3,2)``, ``x_1 = 2``, ``V_1:V_2 = 11:21``,
  ``\\frac{NO}{BO} = ..``, ``[ABC] = 12``; ``5 = x`` keeps ``5``), also in each item of a list
  (``AB=4, CD=5`` -> ``4, 5``); a side that is an expression (``2x+4y-3=0``, ``7 = 11a+c``) makes an
  equation and is kept whole. ``keep_lhs=True`` keeps every left-hand side (used to compare
  equations with each other)
- ``p=5,q=2;p=7,q=2`` (groups of labelled values split by ``;`` or and/or) -> ``(5, 2), (7, 2)``;
  ``(1;2)`` -> ``(1,2)``
- in relations ``\\lor \\vee`` -> or, ``\\land \\wedge`` -> and; ``x \\geq -2 and x < 7`` ->
  ``-2 \\leq x < 7`` (an intersection; or-joined bounds stay a list, i.e. a union)
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
# a length unit squared or cubed, or "square ..." after a number: 1,000.99m², 1,000.99 m^{2},
# 12,000 cm³, 2,500 square meters (only right after a digit, so x^2 + m^2 keeps its m^2)
_LENGTH = "cm|mm|km|m|in|ft|yd|mi|centimeters?|meters?|metres?|millimeters?|kilometers?|inch(?:es)?|feet|foot|" \
          "yards?|miles?|units?"
_TRAILING_AREA = re.compile(
    rf"(?<=[\d}}])\s*(?:(?:square|sq\.?|cubic)\s*(?:{_LENGTH})|(?:{_LENGTH})\s*(?:\^\s*\{{?\s*[23]\s*\}}?|[²³]))\.?$",
    re.IGNORECASE,
)
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
# a variable term a relation can bound: x, x_1, f(x), |z|, a Greek letter
VAR_TERM = re.compile(r"[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?|[a-zA-Z]\([a-zA-Z]\)|\|\s*[a-zA-Z](?:\([a-zA-Z]\))?\s*\|"
                      r"|\\(?:alpha|beta|gamma|theta|phi|omega|lambda|mu|sigma|tau|rho)")
# a label: a name (letters, subscripts, primes), |name|, name(args), \angle/\overline names, a ratio
# of names (\frac{NO}{BO}, NO/BO), an area [ABC], a tuple (p,q) or ratio V_1:V_2 of names -- never an
# expression with operators or numbers
_NAME = r"(?:\\(?:angle|overline|overrightarrow|triangle|widehat|hat|vec|bar)\s*\{?\s*)?[a-zA-Z]+\}?'*" \
        r"(?:_\{?[a-zA-Z0-9]+\}?|_[a-zA-Z0-9])?'*(?:\([a-zA-Z0-9, ]*\))?"
_RATIO_NAME = rf"\\frac\s*\{{\s*{_NAME}\s*\}}\s*\{{\s*{_NAME}\s*\}}|{_NAME}\s*/\s*{_NAME}|\[\s*{_NAME}\s*\]"
_LABEL_ITEM = rf"(?:m\s*)?(?:{_RATIO_NAME}|{_NAME}|\|\s*{_NAME}\s*\|)"
_LABEL = re.compile(
    rf"\s*(?:{_LABEL_ITEM}(?:\s+{_LABEL_ITEM}){{0,3}}|\(\s*{_LABEL_ITEM}(?:\s*,\s*{_LABEL_ITEM})+\s*\)"
    rf"|{_LABEL_ITEM}(?:\s*:\s*{_LABEL_ITEM})+)\s*"
)
_PROSE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")
_LIST_WORD = re.compile(r"\s*,?\s*(?<![\\a-zA-Z])(?:and|or)(?![a-zA-Z])\s*")
_AND_WORD = re.compile(r"\s*,?\s*(?<![\\a-zA-Z])and(?![a-zA-Z])\s*")
_LOGIC = re.compile(r"\\(?:lor|vee|land|wedge)(?![a-zA-Z])")
_BOUND = re.compile(r"\s*(\\leq|\\geq|<|>)\s*")
_FLIP = {"<": ">", ">": "<", "\\leq": "\\geq", "\\geq": "\\leq"}
_SEMI_TUPLE = re.compile(r"([(\[])([^()\[\]{},;]*(?:;[^()\[\]{},;]*)+)([)\]])")  # (1; 2) is (1, 2)


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


def _both_bounds(s: str) -> str | None:
    """``x \\geq -2 and x < 7`` (both sides of one variable term bounded by constants) ->
    ``-2 \\leq x < 7``: an "and" of two inequalities is their intersection, not a list."""
    parts = _AND_WORD.split(s)
    if len(parts) != 2:
        return None
    lower = upper = None
    var = None
    for part in parts:
        pieces = _BOUND.split(part.strip())
        if len(pieces) != 3:
            return None
        a, op, b = (x.strip() for x in pieces)
        if VAR_TERM.fullmatch(b) and a and not _has_letters(a):
            a, op, b = b, _FLIP[op], a
        if not (VAR_TERM.fullmatch(a) and b and not _has_letters(b)) or var not in (None, a.replace(" ", "")):
            return None
        var = a.replace(" ", "")
        if op in ("<", "\\leq"):
            upper = upper or (op, b)
        else:
            lower = lower or (_FLIP[op], b)
    if lower is None or upper is None:
        return None
    return f"{lower[1]} {lower[0]} {var} {upper[0]} {upper[1]}"


def _labelled_groups(s: str) -> str | None:
    """``p=5,q=2;p=7,q=2`` (also joined by and/or): groups of two or more labelled values, each
    one solution, become tuples in the order written: ``(5, 2), (7, 2)``."""
    text = s if ";" in s else _LIST_WORD.sub(";", s)
    groups = split_top(text, ";")
    if len(groups) < 2:
        return None
    out = []
    for group in groups:
        values = []
        for item in split_top(group):
            sides = split_top(item, "=")
            if len(sides) != 2 or not sides[1] or not is_label(sides[0]):
                return None
            values.append(sides[1])
        if len(values) < 2:
            return None
        out.append("(" + ", ".join(values) + ")")
    return ", ".join(out)


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
        numeric = not _has_letters(lhs)
        if numeric and not _has_letters(rhs):  # a computation 6*7 = 42: its result
            out.append(rhs)
        elif numeric and not keep_lhs and is_label(rhs):  # 5 = x: a label on the right
            out.append(lhs)
        elif not numeric and not keep_lhs and is_label(lhs):  # x = 5
            out.append(rhs)
        else:  # an equation: 7 = 11a + c, 2x + 4y - 3 = 0
            out.append(f"{lhs} = {rhs}")
    return ", ".join(out)


# "\\frac" where "\frac" was meant (a string escaped twice): a row break never precedes these in an answer
_DOUBLED = re.compile(r"\\\\(?=(?:left|right|[dt]?frac|sqrt|leq?|geq?|boxed|text|pi|cdot|times|infty|cup|cap|pm)(?![a-zA-Z]))")


def normalize(s: str, keep_lhs: bool = False) -> str:
    s = _DOUBLED.sub(lambda _: "\\", s.strip())
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
    s = _TRAILING_AREA.sub("", s)
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
    if ";" in s:
        s = _SEMI_TUPLE.sub(lambda m: m.group(1) + m.group(2).replace(";", ",") + m.group(3), s)
    if "=" in s and "," in s and (";" in s or _LIST_WORD.search(s)):
        s = _labelled_groups(s) or s
    if RELATION.search(s):  # x < 1 \lor x > 2; x \geq -2 and x \leq 7
        if "\\" in s:
            s = _LOGIC.sub(lambda m: " or " if m.group(0) in ("\\lor", "\\vee") else " and ", s)
        if _AND_WORD.search(s):
            s = _both_bounds(s) or s
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
