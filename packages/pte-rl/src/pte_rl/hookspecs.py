"""The pte-rl extension points: rewards and model backends."""

import pluggy

hookspec = pluggy.HookspecMarker("pte")
hookimpl = pluggy.HookimplMarker("pte")


@hookspec
def pte_register_rewards(register):
    """Register reward functions.

    Call ``register(name, factory, config=ConfigModel, help="...")``. ``factory(config)`` returns
    an object with ``score(completions: list[str], answers: list[str], **columns) ->
    list[RewardResult]`` (see :mod:`pte_rl.rewards`). A reward scores the completion only.
    """


@hookspec
def pte_register_backends(register):
    """Register model backends.

    Call ``register(name, factory, config=ConfigModel, help="...")``. ``factory(config)`` returns
    an object with ``load() -> (model, tokenizer)`` and ``describe() -> str``.
    """
