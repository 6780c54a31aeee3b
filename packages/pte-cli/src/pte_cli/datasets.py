"""Datasets the project generates itself."""

from __future__ import annotations

import json
import random

import click

INSTRUCTION = "Put the final answer in \\boxed{}."
HELDOUT_SEED = 1_000_003  # the default job's held-out problems; training uses --seed (0)


def arithmetic(n: int, seed: int = 0, max_operand: int = 20, max_terms: int = 2, operators: str = "+-*") -> list[dict]:
    """Integer problems with 2 to ``max_terms`` operands in [1, max_operand], e.g. 'What is 12 * 7?'.

    With ``max_terms=3`` two operands come twice as often as three. The answer uses the usual
    precedence. Defaults (two operands up to 20) are the default training job's data: the untrained
    model gets about a third right, so most groups of 8 have reward spread, and 1,200 possible
    problems leave room for a held-out split (three operands: ~5% right, groups all wrong).
    """
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        terms = [rng.randint(1, max_operand) for _ in range(rng.choice((2, 2, 3)) if max_terms >= 3 else 2)]
        ops = [rng.choice(operators) for _ in terms[1:]]
        expr = str(terms[0]) + "".join(f" {o} {t}" for o, t in zip(ops, terms[1:]))
        value = _evaluate(terms, ops)
        rows.append({
            "id": f"arithmetic-{seed}-{i}",
            "prompt": f"What is {expr}? {INSTRUCTION}",
            "answer": str(value),
            "source": "arithmetic",
        })
    return rows


def heldout_arithmetic(n: int, exclude: set[str], seed: int = HELDOUT_SEED, **options) -> list[dict]:
    """``n`` problems from their own seed, none of whose prompts is in ``exclude`` (the training set)."""
    out, chunk, seen = [], 0, set(exclude)
    while len(out) < n:
        for row in arithmetic(4 * n, seed + chunk, **options):
            if row["prompt"] not in seen:
                seen.add(row["prompt"])
                out.append(row)
        chunk += 1
        if chunk > 50:
            raise ValueError("cannot find enough held-out problems outside the training set; widen the options")
    return out[:n]


def _evaluate(terms: list[int], ops: list[str]) -> int:
    """Integer arithmetic with the usual precedence, no eval()."""
    stack = [terms[0]]
    for op, t in zip(ops, terms[1:]):
        if op == "*":
            stack[-1] *= t
        else:
            stack.append(t if op == "+" else -t)
    return sum(stack)


@click.group()
def data():
    """Generate datasets the project ships (JSONL with prompt and answer)."""


@data.command("arithmetic")
@click.option("--n", type=click.IntRange(1), default=256, show_default=True, help="Number of problems.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-operand", type=click.IntRange(2), default=20, show_default=True,
              help="Operands are drawn from 1..N.")
@click.option("--max-terms", type=click.IntRange(2, 3), default=2, show_default=True,
              help="2: only 'a op b'; 3: also 'a op b op c' (a third of the rows).")
@click.option("--operators", default="+-*", show_default=True, help="Operators to draw from (any of + - *).")
def data_arithmetic(n, seed, max_operand, max_terms, operators):
    """Synthetic arithmetic problems with a boxed-answer instruction, JSONL to stdout.

    The defaults are the default `pte train` job's training data (with --seed 0).
    """
    if not operators or set(operators) - set("+-*"):
        raise click.BadParameter(f"{operators!r}: use one or more of + - *", param_hint="--operators")
    for row in arithmetic(n, seed, max_operand, max_terms, operators):
        click.echo(json.dumps(row))
