"""Decide whether a predicted answer equals the gold answer.

Cascade: normalised string match -> exact rational match -> numeric match (relative 1e-6)
-> symbolic match (same free symbols, difference zero at fixed random points; no simplify, so
nothing can run away). Structures: tuples and intervals compare in order and bracket-aware;
sets (``\\{..\\}``, bare comma lists, ``\\pm``) compare as sets; ``pmatrix``/``bmatrix`` compare
element-wise; unions of intervals compare as sets of intervals.

Percent rule: ``50\\%`` equals ``50``; when exactly one side carries ``%``, ``50\\%`` also
equals ``0.5``.

Decimals vs fractions: two terminating numbers (integers, finite decimals, fractions whose
denominator has only factors 2 and 5) compare exactly; a finite decimal against a rational that has
no finite decimal expansion (``1/12`` vs ``0.0833333333``) matches within relative 1e-6.

Relations (``\\leq \\geq < > \\neq =``) compare as relations: each becomes ``e op 0`` with
``op`` in ``< \\leq = \\neq`` and two are equal when the ops agree and the ``e`` are a constant
multiple of each other at random points (positive for ``<``/``\\leq``, nonzero for ``=``/``\\neq``):
``-x > -1`` == ``x < 1``, ``2x+4y-3=0`` == ``y=-\\frac12x+\\frac34``. A relation between a
variable term (``x``, ``f(x)``, ``|z|``) and constants also equals its interval: ``x \\geq 5`` ==
``[5,\\infty)``, ``0<f(x)<1`` == ``(0,1)``, ``x \\neq 2`` == ``(-\\infty,2)\\cup(2,\\infty)``.

Several final boxes (``\\boxed{1}, \\boxed{2}``) are one unordered answer when the gold is a
set or list (top-level commas, ``\\{..\\}``, a union, ``\\pm``); otherwise the last box counts.
``a \\approx b`` (prediction): the exact ``a`` when it is a constant (``x=1/3\\approx1.3`` is
``1/3``), and also the rounded ``b`` when it agrees with ``a`` (1%, or one unit of its last decimal);
otherwise (``x \\approx 11``) the last side.
"""

from __future__ import annotations

import functools
import random
import re
from fractions import Fraction

import sympy
from sympy.core.function import AppliedUndef

from .extract import box_contents
from .normalize import VAR_TERM, normalize
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


_REL_TOKENS = ("\\leq", "\\geq", "\\neq", "<", ">", "=")
_FLIP = {"<": ">", ">": "<", "\\leq": "\\geq", "\\geq": "\\leq", "=": "=", "\\neq": "\\neq"}
_VAR_TERM = VAR_TERM


def _split_relation(s: str):
    """("rel", ops, sides) for ``a op b`` or ``a op b op c`` at bracket depth 0, else None."""
    if not any(t in s for t in _REL_TOKENS):
        return None
    sides, ops, depth, start, i = [], [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            tok = next((t for t in _REL_TOKENS if s.startswith(t, i)), None)
            if tok is not None:
                sides.append(s[start:i].strip())
                ops.append(tok)
                i += len(tok)
                start = i
                continue
        i += 1
    sides.append(s[start:].strip())
    if not ops or len(ops) > 2 or not all(sides):
        return None
    return ("rel", tuple(ops), tuple(sides))


def structure(s: str):
    """Parse the shape of an answer: ("atom", str) or a container of structures."""
    s = s.strip()
    s = re.sub(r"^[a-zA-Z]\s*\\in\s*", "", s)
    m = _MATRIX.fullmatch(s)
    if m:
        rows = [r for r in m.group(1).split("\\\\") if r.strip()]
        return ("matrix", tuple(tuple(structure(c) for c in r.split("&")) for r in rows))
    rel = _split_relation(s)
    if rel is not None and len(_split_top(s)) == 1:
        return rel
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


def _terminating(q: Fraction) -> bool:
    """True when the rational has a finite decimal expansion (denominator 2^a 5^b)."""
    d = q.denominator
    for f in (2, 5):
        while d % f == 0:
            d //= f
    return d == 1


def _rationals_equal(a: Fraction, b: Fraction) -> bool:
    """Exact, except a finite decimal against a rational without one (1/12 vs 0.08333333)."""
    if a == b:
        return True
    if _terminating(a) != _terminating(b) and a and b:
        return abs(a - b) <= abs(a) * Fraction(1, 10**6)
    return False


def _numbers_equal(a, b) -> bool:
    if a.is_Rational and b.is_Rational:
        return _rationals_equal(Fraction(int(a.p), int(a.q)), Fraction(int(b.p), int(b.q)))
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
    values = _at_points(a, b, fa, 3, seed=1234)
    return values is not None and all(abs(va - vb) <= 1e-6 * max(1.0, abs(vb)) for va, vb in values)


def _at_points(a, b, symbols, n: int, seed: int) -> list[tuple[complex, complex]] | None:
    """``(a, b)`` evaluated at ``n`` fixed pseudo-random rational points (None if one fails)."""
    rng = random.Random(seed)
    symbols = sorted(symbols, key=str)
    out = []
    for _ in range(n):
        point = {x: sympy.Rational(rng.randint(1, 97), rng.randint(1, 13)) for x in symbols}
        try:
            out.append((complex(sympy.N(a.subs(point), 20)), complex(sympy.N(b.subs(point), 20))))
        except (TypeError, ValueError, OverflowError, ZeroDivisionError):
            return None
    return out


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
        if fg == fp or (g_pct == p_pct and _rationals_equal(fg, fp)):
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


def _proportional(a, b, positive: bool) -> bool:
    """a == k*b at random points, k constant and nonzero (positive when asked)."""
    a, b = _opaque(a), _opaque(b)
    fa = a.free_symbols
    if not fa or fa != b.free_symbols:
        return False
    values = _at_points(a, b, fa, 8, seed=4321)
    if values is None:
        return False
    ratios = []
    for va, vb in values:
        za, zb = abs(va) < 1e-12, abs(vb) < 1e-12
        if za and zb:
            continue
        if za or zb:
            return False
        ratios.append(va / vb)
        if len(ratios) == 3:
            break
    if len(ratios) < 3:
        return False
    k = ratios[0]
    if abs(k.imag) > 1e-9 * abs(k) or any(abs(r - k) > 1e-6 * abs(k) for r in ratios):
        return False
    return k.real > 0 or not positive


def _canonical(op: str, lhs: str, rhs: str):
    """``lhs op rhs`` as ``(op', e)`` meaning ``e op' 0`` with op' in < \\leq = \\neq."""
    a, b = value_of(lhs), value_of(rhs)
    if op in (">", "\\geq"):
        return _FLIP[op], b - a
    return op, a - b


def _rel_equal(gold, pred) -> bool:
    (og, eg), (op, ep) = _canonical(gold[1][0], *gold[2]), _canonical(pred[1][0], *pred[2])
    return og == op and _proportional(eg, ep, positive=og in ("<", "\\leq"))


def _is_const(side: str) -> bool:
    try:
        return not value_of(side).free_symbols
    except Unverifiable:
        return False


def _interval(rel):
    """The interval a relation between a variable term and constants describes (or None)."""
    ops, sides = rel[1], rel[2]
    inf = ("atom", "\\infty")
    ninf = ("atom", "-\\infty")
    if len(ops) == 1:
        (op,), (lhs, rhs) = ops, sides
        if _VAR_TERM.fullmatch(rhs) and _is_const(lhs):
            op, lhs, rhs = _FLIP[op], rhs, lhs
        if not (_VAR_TERM.fullmatch(lhs) and _is_const(rhs)):
            return None
        c = ("atom", rhs)
        if op == "<":
            return ("seq", "()", (ninf, c))
        if op == "\\leq":
            return ("seq", "(]", (ninf, c))
        if op == ">":
            return ("seq", "()", (c, inf))
        if op == "\\geq":
            return ("seq", "[)", (c, inf))
        if op == "\\neq":
            return ("set", frozenset({("seq", "()", (ninf, c)), ("seq", "()", (c, inf))}))
        return None
    (o1, o2), (a, v, b) = ops, sides
    if not (_VAR_TERM.fullmatch(v) and _is_const(a) and _is_const(b)):
        return None
    br = {"<": "(", "\\leq": "["}
    if o1 in br and o2 in br:
        return ("seq", br[o1] + {"(": ")", "[": "]"}[br[o2]], (("atom", a), ("atom", b)))
    if o1 in _FLIP and o2 in _FLIP and _FLIP[o1] in br and _FLIP[o2] in br:
        return ("seq", br[_FLIP[o2]] + {"(": ")", "[": "]"}[br[_FLIP[o1]]], (("atom", b), ("atom", a)))
    return None


def _equal(gold, pred) -> bool:
    if gold[0] == "rel" or pred[0] == "rel":
        return _rel_or_interval_equal(gold, pred)
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


def _rel_or_interval_equal(gold, pred) -> bool:
    if gold[0] == "rel" and pred[0] == "rel":
        if len(gold[1]) == 1 and len(pred[1]) == 1:
            return _rel_equal(gold, pred)
        if len(gold[1]) == 2 and len(pred[1]) == 2:
            gi, pi = _interval(gold), _interval(pred)
            if gi is not None and pi is not None:
                return _equal(gi, pi)
            return gold[1] == pred[1] and all(_atom_equal(a, b) for a, b in zip(gold[2], pred[2]))
        return False
    g = _interval(gold) if gold[0] == "rel" else gold
    p = _interval(pred) if pred[0] == "rel" else pred
    if g is None or p is None or "rel" in (g[0], p[0]):
        return False
    return _equal(g, p)


def _safe_equal(a, b) -> bool:
    try:
        return _equal(a, b)
    except Unverifiable:
        return False


def _is_list(gold: str) -> bool:
    return structure(normalize(gold))[0] == "set"


_APPROX = re.compile(r"\\approx(?![a-zA-Z])|≈")


def _rounding(text: str, value: complex) -> float:
    """How far a rounded value may be from the exact one: 1%, or one unit in the last decimal
    place it is written to (``1/3 \\approx 0.33``, ``2/3 \\approx 0.66``; half a unit for an integer)."""
    m = re.fullmatch(r"-?\d*(?:\.(\d+))?", text)
    place = (10.0 ** -len(m.group(1)) if m.group(1) else 0.5) if m else 0.0
    return max(0.01 * abs(value), place * (1 + 1e-9))


def _approx_readings(pred: str) -> list[str]:
    """``a \\approx b``: the exact value ``a`` is the answer (``x = 1/3 \\approx 1.3`` reads
    ``1/3``); the rounded ``b`` also counts when it agrees with ``a`` (``_rounding``: ``2\\sqrt{30}
    \\approx 10.95``, ``1/3 \\approx 0.33``). Item by item in a list. Without a constant ``a`` (``x \\approx 11``) the
    answer is ``b`` as before."""
    items = [pred] if re.search(r"\d,\d{3}", pred) else _split_top(pred)
    exact, agree, changed = [], True, False
    for item in items:
        parts = _APPROX.split(item)
        if len(parts) < 2:
            exact.append(item)
            continue
        try:
            first = value_of(normalize(parts[0]))
            if first.free_symbols:
                exact.append(item)
                continue
            rounded = normalize(parts[-1])
            last = value_of(rounded)
            a, b = complex(sympy.N(first, 15)), complex(sympy.N(last, 15))
            agree = agree and not last.free_symbols and abs(a - b) <= _rounding(rounded, b)
        except (Unverifiable, TypeError, ValueError, OverflowError):
            exact.append(item)
            continue
        exact.append(parts[0])
        changed = True
    if not changed:
        return [pred]
    return [", ".join(exact), pred] if agree else [", ".join(exact)]


def answers_equal(gold: str, pred: str) -> bool:
    """True when ``pred`` equals ``gold``. Raises Unverifiable when the comparison cannot be made."""
    if pred.lstrip().startswith(("\\boxed", "\\fbox")):  # several final boxes (see extract)
        boxes = box_contents(pred.strip())
        if len({b.strip() for b in boxes}) == 1:  # the same box repeated is one answer
            boxes = boxes[-1:]
        if len(boxes) >= 2 and _is_list(gold):
            pred = ", ".join(b.strip() for b in boxes)
        elif boxes:
            pred = boxes[-1]
    error = None
    readings = _approx_readings(pred) if "\\approx" in pred or "≈" in pred else [pred]
    for p in readings:
        for keep in (False, True):
            g, q = normalize(gold, keep_lhs=keep), normalize(p, keep_lhs=keep)
            if keep and (g, q) == (normalize(gold), normalize(p)):
                continue
            if g == q:
                return True
            try:
                if _equal(structure(g), structure(q)):
                    return True
            except Unverifiable as err:
                error = error or err
    if error is not None:
        raise error
    return False
