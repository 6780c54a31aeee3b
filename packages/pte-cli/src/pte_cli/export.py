"""``pte export``: a plain-LoRA adapter merged into a standalone transformers model folder, or the
base model itself written as one (``--base``: what TRL, PEFT and vLLM load)."""

from __future__ import annotations

from pathlib import Path

import click

from .options import validate_common


@click.command("export")
@click.argument("adapter", type=click.Path(file_okay=False), required=False)
@click.option("--merge", is_flag=True, help="Fold the LoRA into the base weights (W + alpha/r * B A).")
@click.option("--base", is_flag=True,
              help="Write the base model (--model, default the built-in one) as it is, no adapter: a "
                   "folder TRL, PEFT or vLLM can load.")
@click.option("--output", required=True, type=click.Path(), help="New folder for the model.")
@click.option("--model", default=None, help="Base model [default: the one the adapter was trained on; "
                                            "with --base: smollm2-135m-instruct].")
@click.option("--dtype", default="float32", show_default=True, help="float32, bfloat16 or float16.")
def export(adapter, merge, base, output, model, dtype):
    """Write ADAPTER merged into its base model (--merge), or the base model alone (--base), as a
    transformers folder (config.json, model.safetensors, tokenizer files).

    Only adapters trained with encoder `none` (plain LoRA) can be merged: a thought state S
    changes with every eviction, so W + (alpha/r) A S B has no fixed weight to fold into.
    """
    from pte_lora import read_manifest

    from .build import adapter_encoder, load_model

    out = Path(output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise click.UsageError(f"--output {out}: exists and is not empty; choose a new folder")
    if base:
        if adapter or merge:
            raise click.UsageError("--base writes the base model alone: give no ADAPTER and no --merge")
        choices = validate_common("hf", model, "cpu", dtype, ())
        from pte_rl import ModelNotFound

        try:
            loaded, tokenizer = choices["backend"].build().load()
        except ModelNotFound as err:
            raise click.UsageError(str(err)) from None
        _write_atomically(out, loaded, tokenizer)
        click.echo(f"pte export: base model {choices['backend'].config.model} ({dtype}) -> {out}")
        return
    if adapter is None:
        raise click.UsageError("give an ADAPTER folder with --merge, or --base for the base model alone")
    if not merge:
        raise click.UsageError("nothing to do without --merge (an encoder 'none' adapter folder already "
                               "loads in PEFT as it is); --base writes the base model alone")
    try:
        manifest = read_manifest(adapter)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    encoder = adapter_encoder(adapter, None, explicit=False)  # the encoder it was trained with
    if getattr(encoder.build(), "carries_state", True):
        raise click.UsageError(
            f"{adapter}: encoder '{manifest.encoder}' carries a thought state S that changes with every "
            "eviction event, so y = Wx + (alpha/r) A S B x has no fixed weight to merge into. Only "
            "encoder 'none' adapters (plain LoRA) can be merged; use this one with `pte generate/eval "
            "--adapter`.")
    choices = validate_common("hf", model or manifest.base_model or None, "cpu", dtype, ())
    pte, tokenizer = load_model(choices["backend"], encoder, adapter)
    _write_atomically(out, pte.lora.merge(), tokenizer)
    click.echo(f"pte export: {adapter} merged into {manifest.base_model or model} -> {out}")


def _write_atomically(out: Path, model, tokenizer) -> None:
    """The model folder is written whole or not at all."""
    from pte_rl.files import atomic_folder

    with atomic_folder(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
