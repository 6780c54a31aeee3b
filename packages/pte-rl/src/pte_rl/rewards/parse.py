"""A small LaTeX-math parser to sympy objects. Nothing from the text is ever evaluated as code.

Grammar (recursive descent, depth-limited):
    expr   := term (('+'|'-') term)*
    term   := unary (('*'|'/'|implicit) unary)*
    unary  := ('-'|'+') unary | power
    power  := atom ('!')* ('^' unary)?
    atom   := number | symbol | F '(' expr ')' | '(' expr ')' | '{' expr '}' | \\frac{..}{..} | \\sqrt[n]{..}
              | \\pi | \\infty | function ('^' atom)? ('_' atom)? '(' expr ')' | \\lfloor expr \\rfloor
              | \\sum_{k=a}^{b} term | \\prod_{k=a}^{b} term
Symbols may carry a subscript (``x_1`` == ``x_{1}``); a subscript that is an expression makes an
opaque term of that expression, like ``f(x)`` (``F_{n-k-1}`` == ``F_{n-1-k}``, not ``F_{n-k+1}``);
Greek letters are symbols. ``\\sin^2 x`` is
``(\\sin x)^2``, ``\\sin^{-1}`` is ``\\arcsin``. Sums and products need integer bounds, at most
``MAX_TERMS`` terms and a polynomial (or rational) body of small degree, so they stay cheap.
Integer powers and factorials are size-checked before sympy computes them, so ``9^{9^{9^9}}``
fails fast instead of hanging.
"""

from __future__ import annotations

import math
import re

import sympy

MAX_DEPTH = 60
MAX_BITS = 20000  # largest exact integer a power or factorial may produce
MAX_TERMS = 1000  # terms of all \\sum / \\prod in one answer together
MAX_DEGREE = 20  # degree of a \\sum / \\prod body in its index


class ParseError(ValueError):
    pass


class TooLarge(ParseError):
    pass


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*|\.\d+|\d+)|(?P<cmd>\\[a-zA-Z]+)|(?P<fn>[A-Zfgh])(?=\()"
    r"|(?P<sym>[a-zA-Z](?:_\{\s*[a-zA-Z0-9]{1,8}\s*\}|_[a-zA-Z0-9]|\d{1,8}(?![\d.]))?)"
    r"|(?P<op>[-+*/^(){}\[\]!,|'=_]))"
)
_FUNCS = {
    "\\sin": sympy.sin, "\\cos": sympy.cos, "\\tan": sympy.tan, "\\ln": sympy.log,
    "\\log": sympy.log, "\\exp": sympy.exp, "\\arcsin": sympy.asin, "\\arccos": sympy.acos,
    "\\arctan": sympy.atan, "\\sec": sympy.sec, "\\csc": sympy.csc, "\\cot": sympy.cot,
    "\\sinh": sympy.sinh, "\\cosh": sympy.cosh, "\\tanh": sympy.tanh,
}
_INVERSE = {"\\sin": sympy.asin, "\\cos": sympy.acos, "\\tan": sympy.atan}
_GREEK = {
    "\\alpha", "\\beta", "\\gamma", "\\delta", "\\epsilon", "\\varepsilon", "\\zeta", "\\eta", "\\theta",
    "\\vartheta", "\\kappa", "\\lambda", "\\mu", "\\nu", "\\xi", "\\rho", "\\sigma", "\\tau", "\\phi",
    "\\varphi", "\\chi", "\\psi", "\\omega",
}
_CONST = {"\\pi": sympy.pi, "\\infty": sympy.oo, "\\infinity": sympy.oo}
_SYMBOLS: dict[str, sympy.Symbol] = {}


def _symbol(name: str):
    if name == "i":
        return sympy.I
    if name not in _SYMBOLS:
        _SYMBOLS[name] = sympy.Symbol(name)
    return _SYMBOLS[name]


def tokenize(s: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            if s[pos:].strip() == "":
                break
            raise ParseError(f"unexpected character {s[pos]!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens):
        self.t = tokens
        self.i = 0
        self.depth = 0
        self.terms = 0  # \\sum / \\prod terms computed so far (MAX_TERMS per answer)

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def take(self, value=None):
        tok = self.peek()
        if tok[0] is None or (value is not None and tok[1] != value):
            raise ParseError(f"expected {value!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError("expression nested too deeply")

    def expr(self):
        self.enter()
        value = self.term()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            rhs = self.term()
            value = value + rhs if op == "+" else value - rhs
        self.depth -= 1
        return value

    def _starts_atom(self, tok):
        kind, v = tok
        return kind in ("num", "sym", "fn") or v in ("(", "{") or (kind == "cmd" and v not in ("\\pm", "\\rfloor", "\\rceil"))

    def term(self):
        value = self.unary()
        while True:
            tok = self.peek()
            if tok[1] == "*":
                self.take()
                value = value * self.unary()
            elif tok[1] == "/":
                self.take()
                den = self.unary()
                if den == 0:
                    raise ParseError("division by zero")
                value = value / den
            elif tok[0] is not None and self._starts_atom(tok):
                value = value * self.power()
            else:
                return value

    def unary(self):
        tok = self.peek()
        if tok[1] == "-":
            self.take()
            return -self.unary()
        if tok[1] == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self):
        self.enter()
        base = self.atom()
        while self.peek()[1] == "!":
            self.take()
            base = _factorial(base)
        if self.peek()[1] == "^":
            self.take()
            exp = self.unary()
            base = _pow(base, exp)
        self.depth -= 1
        return base

    def group(self, open_="{", close="}"):
        self.take(open_)
        value = self.expr()
        self.take(close)
        return value

    def atom(self):
        kind, v = self.peek()
        if kind == "num":
            self.take()
            return sympy.Rational(v) if "." in v else sympy.Integer(v)
        if kind == "sym":
            self.take()
            if len(v) == 1 and self.peek()[1] == "_":  # F_{n-k-1}: indexed by an expression
                self.take()
                index = self.group()
                if index.is_Symbol or index.is_Integer:
                    return _symbol(f"{v}_{index}")
                # an opaque term of its index, like f(x): F_{n-k-1} == F_{n-1-k}; inside \sum it is
                # not a rational function of the index, so such a sum stays unparsable, never wrong
                return sympy.Function(f"{v}_")(index)
            # "q1" is the symbol q_1, never q * 1 (that would make p - q1 equal p - q)
            name = v.replace("{", "").replace("}", "").replace(" ", "")
            return _symbol(name if "_" in name or len(name) == 1 else f"{name[0]}_{name[1:]}")
        if kind == "fn":  # I(0), f(x): an opaque function, never I * 0
            self.take()
            return sympy.Function(v)(self.group("(", ")"))
        if v == "(":
            return self.group("(", ")")
        if v == "{":
            return self.group("{", "}")
        if v == "|":
            self.take()
            inner = self.expr()
            self.take("|")
            return sympy.Abs(inner)
        if kind == "cmd":
            self.take()
            if v == "\\frac":
                num = self.group()
                den = self.group()
                if den == 0:
                    raise ParseError("division by zero")
                return num / den
            if v == "\\sqrt":
                if self.peek()[1] == "[":
                    n = self.group("[", "]")
                    return _pow(self.group(), 1 / n)
                return sympy.sqrt(self.group() if self.peek()[1] == "{" else self.atom())
            if v in _CONST:
                return _CONST[v]
            if v in _GREEK:
                return _symbol(v[1:])
            if v in _FUNCS:
                exp = base = None
                if self.peek()[1] == "^":  # \sin^2 x
                    self.take()
                    exp = self.group() if self.peek()[1] == "{" else self.atom()
                if self.peek()[1] == "_" and v == "\\log":  # \log_2 8
                    self.take()
                    base = self.group() if self.peek()[1] == "{" else self.atom()
                arg = self.group("(", ")") if self.peek()[1] == "(" else self.power()
                if exp == -1 and v in _INVERSE:
                    return _INVERSE[v](arg)
                value = sympy.log(arg, base) if base is not None else _FUNCS[v](arg)
                return _pow(value, exp) if exp is not None else value
            if v in ("\\lfloor", "\\lceil"):
                inner = self.expr()
                self.take("\\rfloor" if v == "\\lfloor" else "\\rceil")
                return sympy.floor(inner) if v == "\\lfloor" else sympy.ceiling(inner)
            if v in ("\\sum", "\\prod"):
                return self.big_operator(v)
            raise ParseError(f"unsupported command {v}")
        raise ParseError(f"unexpected token {v!r}")

    def big_operator(self, v):
        """``\\sum_{k=a}^{b} body`` with integer bounds and a small polynomial/rational body."""
        self.take("_")
        self.take("{")
        kind, name = self.take()
        if kind != "sym":
            raise ParseError("sum index must be a symbol")
        self.take("=")
        lo = self.expr()
        self.take("}")
        self.take("^")
        hi = self.group() if self.peek()[1] == "{" else self.atom()
        if not (lo.is_Integer and hi.is_Integer):
            raise ParseError("sum bounds must be integers")
        lo, hi = int(lo), int(hi)
        self.terms += max(0, hi - lo + 1)
        if self.terms > MAX_TERMS or max(abs(lo), abs(hi)) > 10**6:
            raise TooLarge("too many terms")
        body = self.term()
        k = _symbol(name.replace("{", "").replace("}", "").replace(" ", ""))
        if body.has(k):
            if not body.is_rational_function(k):
                raise ParseError("sum body must be a rational function of the index")
            num, den = sympy.fraction(sympy.together(body))
            if sympy.degree(num, k) > MAX_DEGREE or sympy.degree(den, k) > MAX_DEGREE:
                raise TooLarge("sum body degree too large")
        terms = [body.subs(k, i) for i in range(lo, hi + 1)]
        if any(t.has(sympy.zoo, sympy.nan) for t in terms):
            raise ParseError("division by zero")
        return sympy.Add(*terms) if v == "\\sum" else sympy.Mul(*terms)


def _bits(x) -> float:
    return math.log2(abs(int(x)) + 1)


def _pow(base, exp):
    if exp.is_Integer and base.is_Number:
        if abs(int(exp)) * max(_bits(base.p if base.is_Rational else 2), 1) > MAX_BITS:
            raise TooLarge("power too large")
    elif exp.is_Number and base.is_Number and abs(float(exp)) > 10000:
        raise TooLarge("power too large")
    elif exp.is_Integer and abs(int(exp)) > 1000:
        raise TooLarge("symbolic power too large")
    return sympy.Pow(base, exp)


def _factorial(x):
    if not (x.is_Integer and 0 <= int(x) <= 2000):
        raise TooLarge("factorial out of range")
    return sympy.factorial(x)


def parse_expr(s: str):
    tokens = tokenize(s)
    if not tokens:
        raise ParseError("empty")
    p = _Parser(tokens)
    value = p.expr()
    if p.i != len(tokens):
        raise ParseError(f"trailing input at {p.t[p.i][1]!r}")
    return value
