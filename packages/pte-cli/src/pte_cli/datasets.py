"""Datasets the project generates itself."""

from __future__ import annotations

import json
import random

import click

# What the prompt asks after the question. "worked" (the default job's): the untrained model
# writes its steps, median ~55 tokens, so a window of ~25 generated tokens (BUILTIN_CACHE_WINDOW)
# evicts several times per answer. "brief": mostly one line, median ~18 tokens.
INSTRUCTIONS = {
    "worked": "Explain your steps. Put the final answer in \\boxed{}.",
    "brief": "Put the final answer in \\boxed{}.",
}
DEFAULT_STYLE = "worked"
HELDOUT_SEED = 1_000_003  # the default job's held-out problems; training uses --seed (0)
# The default job's cache budget (prompt included) when no window is given: its prompts are
# 52-54 tokens, which keeps 24-26 generated tokens in view, so every event evicts 6-7 tokens and
# a worked answer meets several events. The paper's dynamic window (the prompt's length, ~53)
# would hold most answers whole and the thought state would never update.
BUILTIN_CACHE_WINDOW = 78


def arithmetic(n: int, seed: int = 0, max_operand: int = 20, max_terms: int = 2, operators: str = "+-*",
               style: str = DEFAULT_STYLE) -> list[dict]:
    """Integer problems with 2 to ``max_terms`` operands in [1, max_operand], e.g. 'What is 12 * 7?'
    followed by ``INSTRUCTIONS[style]``.

    With ``max_terms=3`` two operands come twice as often as three. The answer uses the usual
    precedence. Defaults (two operands up to 20, worked answers) are the default training job's
    data: the untrained model gets about a fifth right (full cache; brief answers: a third), so
    groups of 8 have reward spread, and 1,200 possible problems leave room for a held-out split
    (three operands: ~5% right, groups all wrong).
    """
    instruction = INSTRUCTIONS[style]
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        terms = [rng.randint(1, max_operand) for _ in range(rng.choice((2, 2, 3)) if max_terms >= 3 else 2)]
        ops = [rng.choice(operators) for _ in terms[1:]]
        expr = str(terms[0]) + "".join(f" {o} {t}" for o, t in zip(ops, terms[1:]))
        value = _evaluate(terms, ops)
        rows.append({
            "id": f"arithmetic-{seed}-{i}",
            "prompt": f"What is {expr}? {instruction}",
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
@click.option("--style", type=click.Choice(list(INSTRUCTIONS)), default=DEFAULT_STYLE, show_default=True,
              help="worked: 'Explain your steps.' (untrained answers of ~55 tokens, which outgrow the default "
                   "job's window); brief: only the boxed-answer instruction (~18 tokens).")
def data_arithmetic(n, seed, max_operand, max_terms, operators, style):
    """Synthetic arithmetic problems with a boxed-answer instruction, JSONL to stdout.

    The defaults are the default `pte train` job's training data (with --seed 0).
    """
    if not operators or set(operators) - set("+-*"):
        raise click.BadParameter(f"{operators!r}: use one or more of + - *", param_hint="--operators")
    for row in arithmetic(n, seed, max_operand, max_terms, operators, style):
        click.echo(json.dumps(row))


RECALL_FILLER = ("Now I will talk about something else for a while. "
                 "The weather is mild today and the river runs slowly past the old mill near the town.")


RECALL_QUESTIONS = {
    "number": "Answer with the number only.",
    # the digits come a few tokens into the answer: prompt tokens leave the cache when the first
    # generated token is fed, so only tokens after it can use a state that holds them
    "sentence": "Answer with one sentence that starts with: The number was",
}


def recall(n: int, seed: int = 0, digits: int = 4, filler: int = 1, values: str = "0123456789",
           ask: str = "number") -> list[dict]:
    """'Remember this number: 6639. <filler> What was the number?' with a random ``digits``-digit
    number whose digits are drawn from ``values``: a task whose answer is in evicted tokens once
    the cache drops the start of the prompt (``--eviction streaming-llm`` with a budget shorter
    than the prompt). The untrained default model answers it every time with the full cache and
    never once the number is evicted."""
    if not values or not set(values) <= set("0123456789"):
        raise ValueError(f"{values!r}: give digits only, e.g. 38 or 0123456789")
    if ask not in RECALL_QUESTIONS:
        raise ValueError(f"ask {ask!r}: use one of {', '.join(RECALL_QUESTIONS)}")
    rng = random.Random(seed)
    text = " ".join([RECALL_FILLER] * filler)
    pool = sorted(set(values))
    rows = []
    for i in range(n):
        code = "".join(rng.choice(pool) for _ in range(digits))
        rows.append({
            "id": f"recall-{seed}-{i}",
            "prompt": f"Remember this number: {code}. {text} What was the number? {RECALL_QUESTIONS[ask]}",
            "answer": code,
            "source": "recall",
        })
    return rows


@data.command("recall")
@click.option("--n", type=click.IntRange(1), default=256, show_default=True, help="Number of rows.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--digits", type=click.IntRange(1, 12), default=4, show_default=True, help="Digits of the number to recall.")
@click.option("--filler", type=click.IntRange(0, 50), default=1, show_default=True,
              help="Copies of the filler sentence (about 30 tokens each) between the number and the question.")
@click.option("--values", default="0123456789", show_default=True,
              help="Digits to draw from: 38 makes a two-way choice (a guess is right half the time).")
@click.option("--ask", type=click.Choice(list(RECALL_QUESTIONS)), default="number", show_default=True,
              help="number: 'Answer with the number only.'; sentence: 'Answer with one sentence that starts with: "
              "The number was' (the digits come after the first answer tokens).")
def data_recall(n, seed, digits, filler, values, ask):
    """Recall a number from the start of the prompt, JSONL to stdout.

    Under a cache that evicts prompt tokens (streaming-llm) the number leaves before the answer:
    the thought state, or the kept tokens' memory of it (more so without
    -o eviction.stream_prompt=true), must bring it back. Score with partial credit per digit:
    --reward examples/recall_reward.py:digits (whole number right = 1).
    """
    try:
        rows = recall(n, seed, digits, filler, values, ask)
    except ValueError as e:  # --ask is a click.Choice, so only --values can be wrong here
        raise click.BadParameter(str(e), param_hint="--values") from None
    for row in rows:
        click.echo(json.dumps(row))
