"""``pte generate``: sampling under a bounded cache with the thought-state adapter."""

from __future__ import annotations

import json
import sys

import click

from .build import adapter_encoder, adapter_system, load_model, require_fits
from .options import cache_options, model_options, read_data, system_option, validate_common


@click.command()
@model_options
@cache_options
@click.option("--prompt", "prompts", multiple=True, help="A prompt (repeatable).")
@click.option("--prompts-file", type=click.Path(dir_okay=False), default=None,
              help="JSONL file with a 'prompt' field per row.")
@click.option("--adapter", default=None, help="Folder of a saved adapter.")
@click.option("--max-new-tokens", type=click.IntRange(1), default=256, show_default=True)
@click.option("--min-new-tokens", type=click.IntRange(0), default=0, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=0.0, show_default=True,
              help="0 means greedy.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@system_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per prompt on stdout.")
def generate(backend, model, device, dtype, plugin_opts, eviction, cache_window, evict_ratio, sink_tokens,
             encoder, prompts, prompts_file, adapter, max_new_tokens, min_new_tokens, temperature, top_p,
             seed, batch_size, system, as_json):
    """Generate completions under a bounded KV cache (with thought encoding)."""
    choices = validate_common(backend, model, device, dtype, plugin_opts, eviction, cache_window,
                              evict_ratio, sink_tokens, encoder)
    texts = list(prompts)
    if prompts_file:
        rows, _ = read_data(prompts_file, ("prompt",))
        texts += [r["prompt"] for r in rows]
    if not texts:
        raise click.UsageError("give at least one --prompt or a --prompts-file")
    run_generate(choices, texts, adapter=adapter, explicit_encoder=encoder is not None,
                 max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                 temperature=temperature, top_p=top_p, seed=seed, batch_size=batch_size,
                 system=system, as_json=as_json)


def run_generate(choices, texts, *, adapter, explicit_encoder, max_new_tokens, min_new_tokens,
                 temperature, top_p, seed, batch_size, system, as_json):
    import torch
    from tqdm import tqdm

    from pte_rl import SamplingConfig, chat_prompt, eos_ids, sample

    encoder = adapter_encoder(adapter, choices["encoder"], explicit_encoder)
    sampling = SamplingConfig(max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                              temperature=temperature, top_p=top_p)
    pte, tokenizer = load_model(choices["backend"], encoder, adapter)
    system = adapter_system(adapter, system, tokenizer)
    prompts = [chat_prompt(tokenizer, t, system) for t in texts]
    policy = choices["eviction"].build()
    for text, ids in zip(texts, prompts):
        require_fits(policy, ids, f"prompt {text[:40]!r}")
    stop = eos_ids(pte.model, tokenizer)
    generator = torch.Generator(device=pte.device).manual_seed(seed)
    total = len(prompts) * max_new_tokens
    everything = []
    bar = tqdm(total=total, unit="tok", disable=None, file=sys.stderr, desc="generate", leave=False)
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        done = sample(pte, batch, policy, sampling, stop, pad_id=tokenizer.pad_token_id,
                      generator=generator, progress=bar.update)
        everything += done
        for text, c in zip(texts[start : start + batch_size], done):
            completion = tokenizer.decode(c.token_ids, skip_special_tokens=True)
            if as_json:
                click.echo(json.dumps({
                    "prompt": text,
                    "completion": completion,
                    "num_new_tokens": len(c.token_ids),
                    "num_evictions": c.num_evictions,
                    "num_state_updates": c.num_state_updates,
                    "evicted_tokens": c.evicted_tokens,
                    "max_cache_tokens": c.max_cache_tokens,
                    "prompt_tokens": len(c.prompt_ids),
                    "finished": c.finished,
                }))
            else:
                click.echo(f"### {text}\n{completion}\n")
                click.echo(
                    f"[{len(c.token_ids)} tokens, {c.num_evictions} evictions, "
                    f"{c.num_state_updates} state updates, peak cache {c.max_cache_tokens} tokens]\n",
                    err=True,
                )
    bar.close()
    from pte_rl.rollout import eviction_counts, eviction_rates, idle_state_note

    note = idle_state_note(pte.encoder, policy, eviction_rates(eviction_counts(everything)),
                           max(len(c.prompt_ids) for c in everything),
                           max(len(c.prompt_ids) + len(c.token_ids) for c in everything))
    if note:
        click.echo(f"warning: {note}", err=True)
