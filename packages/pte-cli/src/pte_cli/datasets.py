"""Datasets the project generates itself."""

from __future__ import annotations

import random

INSTRUCTION = "Put the final answer in \\boxed{}."


def arithmetic(n: int, seed: int = 0, max_operand: int = 50) -> list[dict]:
    """Two- and three-operand integer problems, e.g. 'What is 12 + 7 * 3?'."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        terms = [rng.randint(1, max_operand) for _ in range(rng.choice((2, 2, 3)))]
        ops = [rng.choice("+-*") for _ in terms[1:]]
        expr = str(terms[0]) + "".join(f" {o} {t}" for o, t in zip(ops, terms[1:]))
        value = _evaluate(terms, ops)
        rows.append({
            "id": f"arithmetic-{seed}-{i}",
            "prompt": f"What is {expr}? {INSTRUCTION}",
            "answer": str(value),
            "source": "arithmetic",
        })
    return rows


def _evaluate(terms: list[int], ops: list[str]) -> int:
    """Integer arithmetic with the usual precedence, no eval()."""
    stack = [terms[0]]
    for op, t in zip(ops, terms[1:]):
        if op == "*":
            stack[-1] *= t
        else:
            stack.append(t if op == "+" else -t)
    return sum(stack)
