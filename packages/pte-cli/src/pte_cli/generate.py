"""``pte generate``: sampling under a bounded cache with the thought-state adapter."""

from __future__ import annotations

import json
import sys

import click
import torch

from .build import adapter_encoder, adapter_system, load_model, require_fits


def run_generate(choices, texts, *, adapter, explicit_encoder, max_new_tokens, min_new_tokens,
                 temperature, top_p, seed, batch_size, system, as_json):
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
    bar = tqdm(total=total, unit="tok", disable=None, file=sys.stderr, desc="generate", leave=False)
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        done = sample(pte, batch, policy, sampling, stop, pad_id=tokenizer.pad_token_id,
                      generator=generator, progress=bar.update)
        for text, c in zip(texts[start : start + batch_size], done):
            completion = tokenizer.decode(c.token_ids, skip_special_tokens=True)
            if as_json:
                click.echo(json.dumps({
                    "prompt": text,
                    "completion": completion,
                    "num_new_tokens": len(c.token_ids),
                    "num_evictions": c.num_evictions,
                    "num_state_updates": c.num_state_updates,
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
