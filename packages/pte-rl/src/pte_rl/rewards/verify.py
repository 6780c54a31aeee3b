"""Decide whether a predicted answer equals the gold answer.

Cascade: normalised string match -> exact rational match -> numeric match (relative 1e-6)
-> symbolic match (same free symbols, difference zero at fixed random points; no simplify, so
nothing can run away). Structures: tuples and intervals compare in order and bracket-aware;
sets (``\\{..\\}``, bare comma lists, ``\\pm``) compare as sets; ``pmatrix``/``bmatrix`` compare
element-wise; unions of intervals compare as sets of intervals.

Percent rule: ``50\\%`` equals ``50``; when exactly one side carries ``%``, ``50\\%`` also
equals ``0.5``.
"""

from __future__ import annotations

import functools
import random
import re
from fractions import Fraction

import sympy
from sympy.core.function import AppliedUndef

from .normalize import normalize
from .parse import ParseError, TooLarge, parse_expr

_PLAIN = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,3})?(?:/\d+)?$")
_MATRIX = re.compile(r"\\begin\{[pbvBV]?matrix\}(.*?)\\end\{[pbvBV]?matrix\}", re.S)


class Unverifiable(ValueError):
    """The answer could not be parsed (the reason is the message)."""


def _split_top(s: str, sep: str = ",") -> list[str]:
    parts, depth, cur = [], 0, []
    for c in s:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _outer_pair(s: str) -> bool:
    """True when s[0] and s[-1] are a matching bracket pair enclosing everything."""
    depth = 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0 and i < len(s) - 1:
                return False
    return depth == 0


def structure(s: str):
    """Parse the shape of an answer: ("atom", str) or a container of structures."""
    s = s.strip()
    s = re.sub(r"^[a-zA-Z]\s*\\in\s*", "", s)
    m = _MATRIX.fullmatch(s)
    if m:
        rows = [r for r in m.group(1).split("\\\\") if r.strip()]
        return ("matrix", tuple(tuple(structure(c) for c in r.split("&")) for r in rows))
    if "\\cup" in s:
        return ("set", frozenset(structure(p) for p in s.split("\\cup")))
    if s.startswith("\\{") and s.endswith("\\}"):
        inner = s[2:-2]
        return ("set", frozenset(structure(p) for p in _split_top(inner) if p))
    if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _outer_pair(s.replace("[", "(").replace("]", ")")):
        parts = _split_top(s[1:-1])
        if len(parts) >= 2:
            return ("seq", s[0] + s[-1], tuple(structure(p) for p in parts))
    parts = _split_top(s)
    if len(parts) >= 2 and all(parts):
        return ("set", frozenset(structure(p) for p in parts))
    if "\\pm" in s:
        a, _, b = s.partition("\\pm")
        a = a.strip() or "0"
        return ("set", frozenset({("atom", f"{a}+({b})"), ("atom", f"{a}-({b})")}))
    return ("atom", s)


@functools.lru_cache(maxsize=65536)
def value_of(s: str):
    """Sympy value of an atom (cached). Raises Unverifiable."""
    try:
        return parse_expr(s)
    except TooLarge as err:
        raise Unverifiable(f"too_large: {err}") from None
    except (ParseError, RecursionError, ValueError, TypeError, ZeroDivisionError) as err:
        raise Unverifiable(f"unparsable: {err}") from None


def _numbers_equal(a, b) -> bool:
    if a.is_Rational and b.is_Rational:
        return a == b
    if a == b:
        return True
    if a.has(sympy.oo, -sympy.oo, sympy.zoo) or b.has(sympy.oo, -sympy.oo, sympy.zoo):
        return False
    try:
        va, vb = complex(sympy.N(a, 30)), complex(sympy.N(b, 30))
    except (TypeError, ValueError, OverflowError):
        return False
    return abs(va - vb) <= 1e-6 * max(1.0, abs(vb))


def _opaque(e):
    """Undefined function applications (I(0), f(x)) become symbols named after them."""
    calls = e.atoms(AppliedUndef)
    return e.xreplace({f: sympy.Symbol(f"_{f}") for f in calls}) if calls else e


def _expr_equal(a, b) -> bool:
    a, b = _opaque(a), _opaque(b)
    fa, fb = a.free_symbols, b.free_symbols
    if not fa and not fb:
        return _numbers_equal(a, b)
    if fa != fb:
        return False
    rng = random.Random(1234)
    symbols = sorted(fa, key=str)
    for _ in range(3):
        point = {x: sympy.Rational(rng.randint(1, 97), rng.randint(1, 13)) for x in symbols}
        try:
            va, vb = complex(sympy.N(a.subs(point), 20)), complex(sympy.N(b.subs(point), 20))
        except (TypeError, ValueError, OverflowError, ZeroDivisionError):
            return False
        if abs(va - vb) > 1e-6 * max(1.0, abs(vb)):
            return False
    return True


def _atom_equal(gold: str, pred: str) -> bool:
    if gold == pred:
        return True
    g_pct, p_pct = gold.endswith("%"), pred.endswith("%")
    g, p = gold.rstrip("%").strip(), pred.rstrip("%").strip()
    if g == p:
        return True
    if _PLAIN.match(g) and _PLAIN.match(p):
        try:
            fg, fp = Fraction(g), Fraction(p)
        except ZeroDivisionError:
            raise Unverifiable("unparsable: division by zero") from None
        if fg == fp:
            return True
        if g_pct != p_pct:
            return (fg / 100 == fp) if g_pct else (fp / 100 == fg)
        return False
    if g.replace(" ", "").lower() == p.replace(" ", "").lower():
        return True
    gv, pv = value_of(g), value_of(p)
    if _expr_equal(gv, pv):
        return True
    if g_pct != p_pct and not gv.free_symbols and not pv.free_symbols:
        return _numbers_equal(gv / 100, pv) if g_pct else _numbers_equal(pv / 100, gv)
    return False


def _equal(gold, pred) -> bool:
    if gold[0] != pred[0]:
        # a one-element set/sequence never equals a bare atom and vice versa, except sets of one
        return False
    kind = gold[0]
    if kind == "atom":
        return _atom_equal(gold[1], pred[1])
    if kind == "seq":
        return gold[1] == pred[1] and len(gold[2]) == len(pred[2]) and all(
            _equal(a, b) for a, b in zip(gold[2], pred[2])
        )
    if kind == "matrix":
        return len(gold[1]) == len(pred[1]) and all(
            len(r1) == len(r2) and all(_equal(a, b) for a, b in zip(r1, r2))
            for r1, r2 in zip(gold[1], pred[1])
        )
    if kind == "set":
        g, p = list(gold[1]), list(pred[1])
        if len(g) != len(p):
            return False
        unmatched = list(p)
        for item in g:
            hit = next((i for i, q in enumerate(unmatched) if _safe_equal(item, q)), None)
            if hit is None:
                return False
            unmatched.pop(hit)
        return True
    return False


def _safe_equal(a, b) -> bool:
    try:
        return _equal(a, b)
    except Unverifiable:
        return False


def answers_equal(gold: str, pred: str) -> bool:
    """True when ``pred`` equals ``gold``. Raises Unverifiable when the comparison cannot be made."""
    g, p = normalize(gold), normalize(pred)
    if g == p:
        return True
    return _equal(structure(g), structure(p))
