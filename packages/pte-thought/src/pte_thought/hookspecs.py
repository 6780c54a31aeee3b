"""The pte-thought extension point: thought encoders."""

import pluggy

hookspec = pluggy.HookspecMarker("pte")
hookimpl = pluggy.HookimplMarker("pte")


@hookspec
def pte_register_thought_encoders(register):
    """Register thought encoders.

    Call ``register(name, factory, config=ConfigModel, help="...")``. ``factory`` receives a
    validated ``config`` and returns a :class:`pte_thought.ThoughtEncoder`.
    """
