"""The ``math-verify`` reward: Hugging Face Math-Verify's answer extraction and equivalence.

For users who want that verifier's exact semantics (to compare with numbers reported with it)
instead of the built-in ``math`` reward's rules (docs/rewards.md lists where the two differ).
Optional: ``pip install math-verify`` (or ``pte-rl[math-verify]``); asking for the reward without
it is refused when the options are checked, before anything loads.

Scored like ``math``: each completion in a killable worker process with a deadline
(``-o reward.timeout``, ``-o reward.workers``), so Math-Verify's own signal-based timeouts are
switched off (they only work on a process's main thread). The gold answer is read as LaTeX
(wrapped in ``$...$`` unless it already holds a ``\\boxed{}``).
"""

from __future__ import annotations

import importlib.util
import logging

from pydantic import model_validator

from .math import MathConfig, MathReward


class MathVerifyConfig(MathConfig):
    @model_validator(mode="after")
    def _installed(self):
        if importlib.util.find_spec("math_verify") is None:
            raise ValueError("the math-verify package is not installed: pip install math-verify")
        return self


def score_item(completion: str, answer: str) -> tuple[float, str | None]:
    """Score one completion with Math-Verify; pure and picklable (runs in worker processes)."""
    from math_verify import parse, verify

    # it warns on every call that its own timeouts are off: the worker's deadline is the bound
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    gold = parse(answer if "\\boxed" in answer else f"${answer}$", parsing_timeout=None)
    if not gold:
        return 0.0, "unparsable_gold"
    pred = parse(completion, parsing_timeout=None)
    if not pred:
        return 0.0, "no_answer"
    return float(verify(gold, pred, timeout_seconds=None)), None


class MathVerifyReward(MathReward):
    name = "math-verify"
    score_item = staticmethod(score_item)
    score_path = "pte_rl.rewards.mathverify:score_item"

    def __init__(self, config: MathVerifyConfig | None = None):
        super().__init__(config or MathVerifyConfig())
