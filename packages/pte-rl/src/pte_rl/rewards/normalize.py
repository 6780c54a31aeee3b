"""Normalise an answer string (LaTeX or plain) into a canonical, parseable form.

Rules (documented in the package README):
- ``\\dfrac \\tfrac \\cfrac`` -> ``\\frac``; ``\\frac12`` / ``\\frac1{2}`` -> ``\\frac{1}{2}``
- ``\\left \\right``, spacing commands, ``$``, trailing periods are dropped
- ``\\text{..} \\mathrm{..} \\textbf{..} \\mbox{..}`` keep their content; unit words and currency
  after a number are dropped (``10 cm`` -> ``10``, ``\\$5`` -> ``5``)
- degrees (``^\\circ``, ``°``, "degrees") are dropped; ``\\%`` -> ``%`` (percent rule: see verify)
- thousands separators ``1,000,000`` -> ``1000000`` (only the exact 3-digit grouping)
- ``x = 5`` / ``y=2x+3``: a single-variable left-hand side is dropped
"""

from __future__ import annotations

import re

_UNITS = (
    "units?|square units?|sq units?|cm|centimeters?|m|meters?|km|kilometers?|mm|millimeters?|in|"
    "inch(?:es)?|ft|feet|foot|yards?|yd|miles?|mi|mph|kg|kilograms?|g|grams?|mg|lbs?|pounds?|"
    "ounces?|oz|l|liters?|litres?|ml|milliliters?|s|sec|seconds?|min|minutes?|h|hrs?|hours?|"
    "days?|weeks?|months?|years?|dollars?|cents?|euros?|people|persons?|students?|apples?|"
    "degrees?|cm\\^2|m\\^2|cm\\^3|m\\^3|ft\\^2|in\\^2|sq\\.? ?ft|percent"
)
_TRAILING_UNIT = re.compile(rf"(?<=[\d}}\s])\s*(?:{_UNITS})\.?$", re.IGNORECASE)
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname|mathit)\s*\{([^{}]*)\}")
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d])(?!\.\d*,)")
_FRAC_SHORT = re.compile(r"\\frac\s*(\d)\s*(\d)")
_FRAC_HALF = re.compile(r"\\frac\s*(\d)\s*(?=\{)")
_FRAC_HALF2 = re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\d)")
_SQRT_SHORT = re.compile(r"\\sqrt\s*(\d+|[a-zA-Z])")
_LHS = re.compile(r"^\s*[a-zA-Z](?:_\{?\w+\}?)?\s*(?:\([a-zA-Z]\))?\s*=\s*(?!=)")


def normalize(s: str) -> str:
    s = s.strip()
    s = s.replace("\n", " ").replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\:", "")
    s = s.replace("\\quad", " ").replace("\\qquad", " ").replace("~", " ")
    s = re.sub(r"(?<!\\)\\ ", " ", s)  # "\ " spacing, but not the "\\" row break
    s = s.replace("\\left", "").replace("\\right", "").replace("\\displaystyle", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\cfrac", "\\frac")
    s = s.replace("\\le ", "\\leq ").replace("\\ge ", "\\geq ").replace("−", "-")
    s = s.replace("\\$", "").replace("$", "")
    for _ in range(3):  # nested \text{\textbf{..}}
        s = _TEXT_CMD.sub(r"\1", s)
    s = s.replace("\\%", "%").replace("％", "%")
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?|°|\\circ|\\degree", "", s)
    s = s.replace("\\dollars", "").replace("\\cdot", "*").replace("\\times", "*").replace("\\div", "/")
    s = s.strip().rstrip(".").strip()
    s = _TRAILING_UNIT.sub("", s).strip()
    s = re.sub(r"^(?:\\\$|\$|€|£|USD\s*|Rs\.?\s*)", "", s).strip()
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_HALF.sub(r"\\frac{\1}", s)
    s = _FRAC_HALF2.sub(r"\\frac\1{\2}", s)
    s = _SQRT_SHORT.sub(r"\\sqrt{\1}", s)
    s = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), s)
    if s.count("=") == 1 and "\\leq" not in s and "\\geq" not in s and "<" not in s and ">" not in s:
        s = _LHS.sub("", s)
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
