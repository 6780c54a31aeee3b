"""Wire validated choices into a Trainer and run it (the body of ``pte train``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import torch

from .build import Choice, load_model, require_fits, template_sha256
from .options import fields_of
from .runconfig import run_args
from .scoring import build_reward


def _problems(kw):
    from pte_rl.data import DataError, Problem, load_problems

    from .datasets import arithmetic

    if kw["data_path"] is None:
        return [Problem(r["prompt"], r["answer"], {k: r[k] for k in ("id", "source")}) for r in arithmetic(256, 0)]
    try:
        problems, _ = load_problems(kw["data_path"], kw["skip_bad_rows"], fields_of(kw))
    except DataError as err:
        raise click.UsageError(str(err)) from None
    return problems


def _eval_problems(kw, train_problems):
    from pte_rl.data import DataError, Problem, load_problems

    from .datasets import heldout_arithmetic

    if kw["eval_path"] is not None:
        try:
            return load_problems(kw["eval_path"], kw["skip_bad_rows"], fields_of(kw))[0]
        except DataError as err:
            raise click.UsageError(str(err)) from None
    if kw["data_path"] is not None:
        return []
    seen = {p.prompt for p in train_problems}
    return [Problem(r["prompt"], r["answer"], {k: r[k] for k in ("id", "source")})
            for r in heldout_arithmetic(64, seen)]


def _train_config(kw):
    from pydantic import ValidationError

    from pte_rl.config import TrainConfig

    fields = {k: kw[k] for k in TrainConfig.model_fields if k in kw}
    fields["tensorboard"] = not kw["no_tensorboard"]
    try:
        return TrainConfig(**fields)
    except ValidationError as err:
        e = err.errors()[0]
        raise click.UsageError(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}") from None


def _lora_config(kw, encoder_choice):
    from pte_lora import LoRAConfig

    options = {}
    if kw["lora_alpha"] is not None:
        options["lora_alpha"] = kw["lora_alpha"]
    if kw["target_modules"]:
        t = kw["target_modules"].strip()
        options["target_modules"] = t if t == "all-linear" else [x.strip() for x in t.split(",") if x.strip()]
    rank = getattr(encoder_choice.config, "rank", 32)
    options.setdefault("lora_alpha", float(rank))
    return LoRAConfig(r=rank, global_tokens=getattr(encoder_choice.config, "global_tokens", rank), **options)


def run_train(choices, kw):
    from pte_lora import AdapterManifest
    from pte_rl import chat_prompt, eos_ids
    from pte_rl.backends import pick_device
    from pte_rl.trainer import Trainer, init_distributed

    config = _train_config(kw)
    problems = _problems(kw)
    eval_problems = _eval_problems(kw, problems)
    rewards = kw["rewards"] or (("math", 1.0),)
    reward = build_reward(rewards, choices["extra"])
    eviction: Choice = choices["eviction"]
    encoder: Choice = choices["encoder"]
    lora = _lora_config(kw, encoder)
    resolved = {
        "backend": choices["backend"].name, "backend_options": choices["backend"].options(),
        "eviction": eviction.name, "eviction_options": eviction.options(),
        "encoder": encoder.name, "encoder_options": encoder.options(),
        "rewards": [{"name": n, "weight": w} for n, w in rewards],
        "lora": lora.model_dump(), "train": config.model_dump(),
        "data": kw["data_path"] or "builtin:arithmetic", "num_problems": len(problems),
        "eval_data": kw["eval_path"] or ("builtin:arithmetic-heldout" if eval_problems else None),
        "num_eval_problems": len(eval_problems),
        "args": run_args(kw),  # `pte train --config this-file` repeats the run
    }
    if kw["dry_run"]:
        click.echo(json.dumps(resolved, indent=2))
        return

    device = pick_device(choices["backend"].config.device)
    if device.type == "cuda" and torch.cuda.device_count() > 1:
        import os

        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        choices["backend"].config = choices["backend"].config.model_copy(update={"device": str(device)})
    from pte_rl.memory import limit_heap_fragmentation

    if device.type == "cpu":
        limit_heap_fragmentation()
    dist_info = init_distributed(device)
    torch.manual_seed(config.seed)
    t0 = time.time()
    pte, tokenizer = load_model(choices["backend"], encoder, lora=lora)
    system = kw["system"]
    policy = eviction.build()
    encoded = {}  # every prompt is tokenised once, and checked against the budget before training
    for rows, path, builtin in ((problems, kw["data_path"], "built-in data"),
                                (eval_problems, kw["eval_path"], "built-in held-out data")):
        for p in rows:
            if p.prompt not in encoded:
                encoded[p.prompt] = chat_prompt(tokenizer, p.messages or p.prompt, system)
            require_fits(policy, encoded[p.prompt], f"{path}:{p.line}" if p.line is not None else builtin)
    manifest = AdapterManifest(
        pte_version=_version(), base_model=choices["backend"].config.model, lora=lora,
        encoder=encoder.name, encoder_options=encoder.options(), eviction=eviction.name,
        eviction_options=eviction.options(), system=system, chat_template_sha256=template_sha256(tokenizer),
    )
    out = Path(config.output_dir)
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(resolved, indent=2))
    trainer = Trainer(pte, tokenizer, eviction.build, reward, problems, config, manifest,
                      eos_ids(pte.model, tokenizer), encoded.__getitem__, dist_info, eval_problems=eval_problems)
    from pte_rl.checkpoint import CheckpointError
    from pte_rl.rewards.function import RewardFunctionError

    try:
        result = trainer.train()
    except (CheckpointError, RewardFunctionError) as err:  # the user's folder or function: the message
        raise click.ClickException(str(err)) from None
    for _, r, _ in reward.parts:
        getattr(r, "close", lambda: None)()
    if dist_info.main:
        h = result["history"]
        k = max(1, min(5, len(h) // 2)) if h else 1
        first = sum(m["reward"] for m in h[:k]) / k if h else float("nan")
        last = sum(m["reward"] for m in h[-k:]) / k if h else float("nan")
        click.echo(
            f"pte train: steps {result['start_step']}->{config.max_steps} in {time.time() - t0:.0f}s; "
            f"mean reward first {k} steps {first:.3f} -> last {k} steps {last:.3f}; "
            + _heldout_line(result.get("eval_before"), result.get("eval_after"))
            + f"checkpoint {result['checkpoint']}; metrics {out / 'metrics.jsonl'}"
        )
    if dist_info.world > 1:
        import gc

        import torch.distributed as dist

        # Tear gloo down while the interpreter is fully alive: gloo threads still holding work
        # objects at finalisation can abort the process (SIGABRT) after a successful run.
        dist.barrier()
        dist.destroy_process_group()
        gc.collect()


def _heldout_line(before, after) -> str:
    """``held-out accuracy 0.24 -> 0.41 (n=64, 95% CI ...)``, or nothing when there was no eval."""
    if not after:
        return ""
    ci = f"[{after['eval/accuracy_ci_low']:.2f}, {after['eval/accuracy_ci_high']:.2f}]"
    start = f"{before['eval/accuracy']:.3f} -> " if before and "eval/accuracy" in before else ""
    return f"held-out accuracy {start}{after['eval/accuracy']:.3f} (greedy, n={after['eval/n']}, 95% CI {ci}); "


def _version() -> str:
    from . import __version__

    return __version__
