"""Rewards: the math verifier and friends. The rules: docs/rewards.md."""

from .base import Reward, RewardResult, WeightedSum
from .extract import extract_answer, last_boxed
from .length import OverlongConfig, OverlongReward
from .math import ExactReward, FormatReward, MathConfig, MathReward, score_item
from .normalize import normalize
from .verify import Unverifiable, answers_equal

__all__ = [
    "ExactReward",
    "FormatReward",
    "MathConfig",
    "MathReward",
    "OverlongConfig",
    "OverlongReward",
    "Reward",
    "RewardResult",
    "Unverifiable",
    "WeightedSum",
    "answers_equal",
    "extract_answer",
    "last_boxed",
    "normalize",
    "score_item",
]
