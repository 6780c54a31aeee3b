"""``pte plugins``: every registered name, its kind and the distribution providing it."""

from __future__ import annotations

import json

import click

from .registry import RegistryError, get_registry


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def plugins(as_json):
    """List every registered plugin name, its kind and the distribution providing it."""
    try:
        rows = get_registry().rows()
    except RegistryError as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in ("kind", "name")}
    prov = max(len("provider"), *(len(f"{r['provider']} {r['version']}") for r in rows))
    click.echo(f"{'KIND':<{widths['kind']}}  {'NAME':<{widths['name']}}  {'PROVIDER':<{prov}}  HELP")
    for r in rows:
        provider = f"{r['provider']} {r['version']}".strip()
        click.echo(f"{r['kind']:<{widths['kind']}}  {r['name']:<{widths['name']}}  {provider:<{prov}}  {r['help']}")
