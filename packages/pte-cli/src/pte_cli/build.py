"""Turn validated names and options into live objects.

:func:`load_model` loads a base model and wraps it with the adapter and thought encoder for
``pte train``, ``pte generate``, ``pte eval`` and ``pte export --merge``; ``pte export --base``
loads the bare base model through its backend itself (``export.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from .registry import get_registry


@dataclass
class Choice:
    """A validated plugin choice: name + config (no objects built yet)."""

    kind: str
    name: str
    config: Any

    def build(self):
        return get_registry().get(self.kind, self.name).build(self.config)

    def options(self) -> dict[str, Any]:
        return {} if self.config is None else self.config.model_dump()


def choice_of(kind: str, chosen) -> Choice:
    """A run config's ``PluginChoice`` (name + options) validated into a buildable :class:`Choice`."""
    entry = get_registry().get(kind, chosen.name)
    return Choice(kind, chosen.name, entry.validate(chosen.options))


def adapter_encoder(adapter: str | None, encoder: Choice, explicit: bool) -> Choice:
    """The encoder a saved adapter was trained with; conflicts with an explicit --encoder fail."""
    if not adapter:
        return encoder
    from pte_lora import read_manifest

    try:
        manifest = read_manifest(adapter)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    if explicit and manifest.encoder != encoder.name:
        raise click.UsageError(
            f"--encoder {encoder.name} conflicts with the adapter at {adapter}, trained with "
            f"encoder '{manifest.encoder}'; drop --encoder or pick that encoder"
        )
    entry = get_registry().get("encoder", manifest.encoder)
    return Choice("encoder", manifest.encoder, entry.validate(manifest.encoder_options))


def load_model(backend: Choice, encoder: Choice, adapter: str | None = None, lora=None):
    """Load the base model and wrap it: returns ``(pte_model, tokenizer)``."""
    from pte_lora import load_adapter, read_manifest
    from pte_rl import ModelNotFound, PTEModel

    try:
        model, tokenizer = backend.build().load()
    except ModelNotFound as err:
        raise click.UsageError(str(err)) from None
    if adapter:
        lora = read_manifest(adapter).lora
    pte = PTEModel(model, encoder.build(), lora)
    if adapter:
        try:
            load_adapter(adapter, pte.lora, pte.encoder)
        except ValueError as err:
            raise click.UsageError(str(err)) from None
    return pte, tokenizer


def require_fits(policy, ids: list[int], where: str) -> None:
    """Stop with a usage error naming ``where`` when a prompt does not fit the cache budget."""
    try:
        policy.check_prompts([len(ids)])
    except ValueError as err:
        raise click.UsageError(f"{where}: prompt of {len(ids)} tokens does not fit: {err}") from None


def template_sha256(tokenizer) -> str | None:
    """Hash of the tokenizer's chat template (None without one): prompts are built with it."""
    import hashlib

    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return None
    text = template if isinstance(template, str) else repr(sorted(template.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def adapter_system(adapter: str | None, system: str | None, tokenizer) -> str | None:
    """The system prompt to query an adapter with: the one it was trained with unless ``--system``
    is given. Says on stderr what it picked, and warns once where the prompt differs from training
    (another --system, or another chat template)."""
    if not adapter:
        return system
    from pte_lora import read_manifest

    manifest = read_manifest(adapter)
    trained = manifest.system
    if system is None:
        if trained is not None:
            click.echo(f"pte: using the system prompt the adapter was trained with: {trained!r} "
                       "(--system to change it)", err=True)
        system = trained
    elif system != trained:
        click.echo(f"warning: --system {system!r} differs from the adapter's training prompt "
                   f"({'none' if trained is None else repr(trained)}): the model sees prompts it was not "
                   "trained on", err=True)
    if manifest.chat_template_sha256 and manifest.chat_template_sha256 != template_sha256(tokenizer):
        click.echo("warning: this tokenizer's chat template differs from the one the adapter was trained "
                   "with: prompts are built differently than in training", err=True)
    return system
