"""The pte-cache extension point: eviction policies."""

import pluggy

hookspec = pluggy.HookspecMarker("pte")
hookimpl = pluggy.HookimplMarker("pte")


@hookspec
def pte_register_eviction_policies(register):
    """Register eviction policies.

    Call ``register(name, factory, config=ConfigModel, help="...")`` once per policy. ``factory``
    receives a validated instance of ``config`` (a pydantic model) and returns an object with the
    :class:`pte_cache.EvictionPolicy` interface. Names are lower-case kebab-case.
    """
