"""The ``math``, ``exact`` and ``format`` rewards."""

from __future__ import annotations

import functools

from pydantic import BaseModel, ConfigDict, Field

from .base import RewardResult
from .extract import MAX_ANSWER, extract_answer, last_boxed, reference_boxes
from .normalize import normalize
from .pool import TIMEOUT, BoundedPool
from .verify import Unverifiable, answers_equal


class MathConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout: float = Field(1.0, gt=0, description="Seconds allowed per completion.")
    workers: int = Field(2, ge=0, description="Worker processes (0: score in-process, no hard time bound).")


@functools.lru_cache(maxsize=65536)
def _compare(gold: str, pred: str) -> tuple[float, str | None]:
    try:
        return (1.0, None) if answers_equal(gold, pred) else (0.0, None)
    except Unverifiable as err:
        return 0.0, str(err).split(":", 1)[0]
    except RecursionError:
        return 0.0, "too_deep"
    except Exception as err:  # a reward never raises; the reason is countable
        return 0.0, f"error: {type(err).__name__}"


def score_item(completion: str, answer: str) -> tuple[float, str | None]:
    """Score one completion; pure and picklable (runs in worker processes)."""
    pred, _ = extract_answer(completion)
    if pred is None:
        return 0.0, "no_answer"
    if len(pred) > MAX_ANSWER:
        return 0.0, "answer_too_long"
    return _compare(gold_answer(answer), pred)


def gold_answer(answer: str) -> str:
    """The reference to compare with: its final box, or its final boxes as one list when at most two
    words separate them (see ``reference_boxes``; ``3, 5``), else the whole text."""
    boxes = reference_boxes(answer)
    if len(set(boxes)) > 1:
        return ", ".join(boxes)
    return boxes[-1] if boxes else answer


def _result(raw) -> RewardResult:
    if raw is TIMEOUT:
        return RewardResult(0.0, "timeout", failed=True)
    value, reason = raw
    if value == "error":
        return RewardResult(0.0, f"error: {reason}", failed=True)
    # a verdict (no_answer, unparsable, too_large) is a zero on purpose; an exception is a failure
    return RewardResult(float(value), reason, failed=bool(reason) and reason.startswith("error:"))


class MathReward:
    name = "math"
    # the scoring function, and its import path for the worker processes (a subclass swaps both)
    score_item = staticmethod(score_item)
    score_path = "pte_rl.rewards.math:score_item"

    def __init__(self, config: MathConfig | None = None):
        self.config = config or MathConfig()
        self._pool = None

    def score(self, completions: list[str], answers: list[str], **columns) -> list[RewardResult]:
        items = [(str(c), str(a)) for c, a in zip(completions, answers)]
        if self.config.workers == 0:
            out = []
            for item in items:
                try:
                    out.append(_result(self.score_item(*item)))
                except Exception as err:  # never raise
                    out.append(RewardResult(0.0, f"error: {type(err).__name__}", failed=True))
            return out
        if self._pool is None:
            self._pool = BoundedPool(self.score_path, self.config.workers, self.config.timeout)
        return [_result(r) for r in self._pool.map(items)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class ExactConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExactReward:
    """1 when the extracted answer equals the reference after string normalisation."""

    name = "exact"

    def __init__(self, config: ExactConfig | None = None):
        self.config = config or ExactConfig()

    def score(self, completions, answers, **columns):
        out = []
        for c, a in zip(completions, answers):
            pred, _ = extract_answer(str(c))
            if pred is None:
                out.append(RewardResult(0.0, "no_answer"))
                continue
            gold = last_boxed(str(a)) or str(a)
            out.append(RewardResult(float(normalize(pred) == normalize(gold))))
        return out


class FormatReward:
    """1 when the completion contains a well-formed, non-empty final \\boxed{...}."""

    name = "format"

    def __init__(self, config: ExactConfig | None = None):
        self.config = config or ExactConfig()

    def score(self, completions, answers, **columns):
        out = []
        for c in completions:
            boxed = last_boxed(str(c))
            out.append(RewardResult(float(bool(boxed and boxed.strip()))))
        return out
