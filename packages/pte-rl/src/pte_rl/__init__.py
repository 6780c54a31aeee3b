"""pte-rl: backends, rollout, replay, rewards, GRPO and the trainer.

Exports are imported lazily so light users (reward worker processes) never import torch.
"""

import importlib

_EXPORTS = {
    "HFBackend": "backends", "HFConfig": "backends", "ModelNotFound": "backends",
    "chat_prompt": "backends", "eos_ids": "backends", "resolve_model": "backends",
    "hookimpl": "hookspecs", "pte_register_backends": "hookspecs", "pte_register_rewards": "hookspecs",
    "PTEModel": "policy", "token_logprobs": "policy",
    "replay_logprobs": "replay",
    "Completion": "rollout", "SamplingConfig": "rollout", "sample": "rollout", "teacher_forced": "rollout",
    "Trainer": "trainer", "TrainerParts": "trainer", "TrainConfig": "config", "RunConfig": "config",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'pte_rl' has no attribute {name!r}")
