"""pte-rl: backends, rollout, replay, rewards, GRPO and the trainer."""

from .backends import HFBackend, HFConfig, ModelNotFound, chat_prompt, eos_ids, resolve_model
from .hookspecs import hookimpl, pte_register_backends, pte_register_rewards
from .policy import PTEModel, token_logprobs
from .replay import replay
from .rollout import Completion, SamplingConfig, sample

__all__ = [
    "Completion",
    "HFBackend",
    "HFConfig",
    "ModelNotFound",
    "PTEModel",
    "SamplingConfig",
    "chat_prompt",
    "eos_ids",
    "hookimpl",
    "pte_register_backends",
    "pte_register_rewards",
    "replay",
    "resolve_model",
    "sample",
    "token_logprobs",
]
__version__ = "0.1.0"
