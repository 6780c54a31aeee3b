"""Cache-aware GRPO trainer: one step reads top to bottom in :meth:`Trainer.step`.

rollout (no grad, bounded cache) -> rewards -> group advantages -> reference log-probs (adapter
off, full cache, no grad) -> replay with grad, chunk by chunk, loss backpropagated per chunk ->
one gradient all-reduce across ranks -> clip -> optimizer -> metrics -> checkpoint.

The pieces it composes: :class:`TrainerParts` (the live objects of a run), a
:class:`~pte_rl.sampler.PromptSampler` (data order), :class:`~pte_rl.distributed.Dist` (sums across
ranks), replay (:mod:`pte_rl.replay`), the GRPO maths (:mod:`pte_rl.grpo`) and the metrics
(:mod:`pte_rl.metrics`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from .checkpoint import (
    agreed_checkpoint,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    run_identity,
    save_checkpoint,
)
from .config import RunConfig, TrainConfig
from .data import Problem, extra_columns
from .distributed import DIST_TIMEOUT, Dist, init_distributed  # noqa: F401 (re-exported: the CLI's import)
from .evaluation import evaluate_counts, summarize_counts
from .grpo import Trajectory, group_advantages, token_weights
from .metrics import REDUCTIONS, MetricsLogger, step_metrics
from .replay import replay_logprobs
from .rollout import (
    Completion,
    SamplingConfig,
    eviction_counts,
    eviction_rates,
    idle_state_note,
    rollout_columns,
    sample,
)
from .sampler import PromptSampler


def _step_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 7919 + rank * 104_729) % (2**63)


@dataclass
class TrainerParts:
    """The live objects of a run (``pte train`` builds them from a :class:`RunConfig`)."""

    pte: Any  # pte_rl.PTEModel
    tokenizer: Any
    policy_factory: Callable[[], object]  # a fresh eviction policy per rollout
    reward: Any  # pte_rl.rewards.WeightedSum
    problems: list[Problem]
    manifest: Any  # pte_lora.AdapterManifest, saved with every checkpoint
    eos: list[int]
    prompt_ids: Callable[[str], list[int]]  # a prompt's chat-template token ids
    eval_problems: list[Problem] = field(default_factory=list)


class Trainer:
    """GRPO on ``parts`` as ``config`` says. ``run``: the whole run's config, recorded in every
    checkpoint (without it, checkpoints record the training settings only)."""

    def __init__(self, config: TrainConfig, parts: TrainerParts, *, run: RunConfig | None = None,
                 dist_info: Dist | None = None, progress: bool = True):
        self.config, self.parts, self.run = config, parts, run
        self.pte, self.tokenizer, self.reward = parts.pte, parts.tokenizer, parts.reward
        self.policy_factory, self.problems, self.eval_problems = parts.policy_factory, parts.problems, parts.eval_problems
        self.dist = dist_info or Dist()
        self.progress = progress
        self.device = self.pte.device
        self.params = self.pte.trainable_parameters()
        if config.compile:
            if self.pte.lean is not None:  # one compiled decode step; CUDA graphs on a GPU
                self.pte.compile_decode(mode="reduce-overhead" if self.device.type == "cuda" else None)
            else:  # not the lean forward's architecture: the blocks the cache does not touch
                self.pte.compile()
        self.dist.broadcast_parameters(self.params)
        fused = self.device.type == "cuda"
        self.optimizer = torch.optim.AdamW(self.params, lr=config.learning_rate,
                                           weight_decay=config.weight_decay, fused=fused or None)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_lambda)
        self.logger = MetricsLogger(config.output_dir, enabled=self.dist.main, tensorboard=config.tensorboard)
        self.sampler = PromptSampler(parts.problems, config.prompts_per_step, config.seed, self.dist.rank,
                                     self.dist.world)
        self._encoded: dict[str, list[int]] = {}
        self._flat_steps = 0
        # the run's rollouts so far (this process): eviction counts and the longest prompt / row
        self._evictions = {**eviction_counts([]), "longest_prompt": 0, "longest_row": 0}
        self.identity = run_identity(parts.manifest, config.model_dump(), parts.problems)

    # ------------------------------------------------------------------ setup
    def _lr_lambda(self, step: int) -> float:
        c = self.config
        if step < c.warmup_steps:
            return (step + 1) / (c.warmup_steps + 1)
        if c.lr_scheduler == "constant":
            return 1.0
        progress = (step - c.warmup_steps) / max(1, c.max_steps - c.warmup_steps)
        if c.lr_scheduler == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    def _encode(self, text: str) -> list[int]:
        if text not in self._encoded:
            self._encoded[text] = self.parts.prompt_ids(text)
        return self._encoded[text]

    def problems_for(self, step: int) -> list[Problem]:
        """This rank's prompts for ``step``."""
        return self.sampler.for_step(step)

    # ------------------------------------------------------------------ one step
    def rollout(self, problems: list[Problem], step: int) -> list[Completion]:
        c = self.config
        sampling = SamplingConfig(max_new_tokens=c.max_new_tokens, temperature=c.temperature, top_p=c.top_p)
        prompts = [self._encode(p.prompt) for p in problems for _ in range(c.group_size)]
        generator = torch.Generator(device=self.device).manual_seed(_step_seed(c.seed, step, self.dist.rank))
        # bucket by prompt length so no row is padded more than needed (groups stay together)
        order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
        out: list[Completion | None] = [None] * len(prompts)
        for s in range(0, len(order), c.rollout_sub_batch_size):
            idx = order[s : s + c.rollout_sub_batch_size]
            done = sample(self.pte, [prompts[i] for i in idx], self.policy_factory(), sampling, self.parts.eos,
                          pad_id=self.tokenizer.pad_token_id or 0, generator=generator)
            for i, comp in zip(idx, done):
                out[i] = comp
        return out

    @torch.no_grad()
    def reference_logprobs(self, completions: list[Completion], width: int) -> torch.Tensor:
        """Base model (adapter off), full cache, no grad."""
        out = torch.zeros(len(completions), width, device=self.device)
        plain = [Completion(c.prompt_ids, c.token_ids) for c in completions]
        with self.pte.lora.disabled():
            for idx in self._buckets(completions, self.config.reference_sub_batch_size):
                lp, _ = replay_logprobs(self.pte, [plain[i] for i in idx], self.config.temperature,
                               max_chunk=max(256, self.config.replay_chunk),
                               pad_id=self.tokenizer.pad_token_id or 0)
                out[idx, : lp.shape[1]] = lp
        return out

    @staticmethod
    def _buckets(completions, size, rows=None):
        """Indices of ``completions`` (or of ``rows`` among them) in sub-batches of similar length."""
        order = sorted(range(len(completions)) if rows is None else rows,
                       key=lambda i: (len(completions[i].prompt_ids), len(completions[i].token_ids)))
        return [order[s : s + size] for s in range(0, len(order), size)]

    def step(self, step: int) -> dict:
        """One GRPO step: rollout, rewards, advantages, reference, replay + update, metrics."""
        c = self.config
        t0 = time.perf_counter()
        problems = self.problems_for(step)
        completions = self.rollout(problems, step)
        times = {"rollout": time.perf_counter() - t0}
        self._count_evictions(completions)

        texts = [self.tokenizer.decode(x.token_ids, skip_special_tokens=True) for x in completions]
        parts = self.score(problems, texts, completions)
        batch = self.trajectory(completions, torch.tensor(self.reward.total(parts), dtype=torch.float32))
        if c.log_completions:
            self.logger.log_completions(step + 1, self._sample_rows(problems, completions, texts, parts, batch.rewards))

        t = time.perf_counter()
        batch.ref_lp = self.reference_logprobs(completions, batch.old_lp.shape[1]) if c.beta > 0 else None
        times["reference"] = time.perf_counter() - t

        t = time.perf_counter()
        # every group flat on every rank and no KL or entropy term: no gradient at all, so the step
        # is skipped (counted in `skipped_step`) instead of spending a replay. With beta > 0 it
        # trains: the KL to the full-cache reference still pulls when the reward says nothing
        # (as in TRL), and the policy under the bounded cache differs from that reference.
        flat = not self._flat_groups_train and \
            self.dist.all_sum([float(bool(batch.zero_std.all()))], self.device)[0] == self.dist.world
        grad_norm = torch.zeros(())
        rows = [i for i in range(len(completions)) if batch.replayed[i]]
        for iteration in range(0 if flat else c.num_iterations):
            self.optimizer.zero_grad(set_to_none=True)
            for idx in self._buckets(completions, c.replay_sub_batch_size, rows):
                self._replay_backward(batch, idx, first=iteration == 0)
            grad_norm = self._reduce_and_clip()
            self.optimizer.step()
        with warnings.catch_warnings():  # a skipped step has no optimizer.step(); the schedule still counts it
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            self.scheduler.step()
        times["train"] = time.perf_counter() - t
        times["step"] = time.perf_counter() - t0
        metrics = step_metrics(batch, parts, c.num_iterations, times, skipped=flat, grad_norm=float(grad_norm),
                               learning_rate=self.scheduler.get_last_lr()[0], device=self.device,
                               dtype=self.pte.dtype)
        return self.dist.reduce_metrics(metrics, REDUCTIONS, self.device)

    def _count_evictions(self, completions: list[Completion]) -> None:
        seen = self._evictions
        for k, v in eviction_counts(completions).items():
            seen[k] += v
        seen["longest_prompt"] = max([seen["longest_prompt"]] + [len(c.prompt_ids) for c in completions])
        seen["longest_row"] = max([seen["longest_row"]] + [len(c.prompt_ids) + len(c.token_ids) for c in completions])

    def idle_state_note(self) -> str | None:
        """The note for a run whose rollouts so far saw < 1 eviction event per completion, or None."""
        seen = self._evictions
        if seen["completions"] == 0:
            return None
        return idle_state_note(self.pte.encoder, self.policy_factory(), eviction_rates(seen),
                               int(seen["longest_prompt"]), int(seen["longest_row"]))

    def score(self, problems: list[Problem], texts: list[str], completions: list[Completion]) -> dict:
        """Every reward part of every completion: each problem's extra columns passed along, and
        what the rollout knows (:func:`rollout_columns`)."""
        rows = [p for p in problems for _ in range(self.config.group_size)]
        columns = {**extra_columns(rows), **rollout_columns([r.prompt for r in rows], completions)}
        return self.reward.score_parts(texts, [r.answer for r in rows], **columns)

    @property
    def _flat_groups_train(self) -> bool:
        """Whether a group without reward spread still has a gradient (a KL or entropy term)."""
        return self.config.beta > 0 or self.config.entropy_coef > 0

    def trajectory(self, completions: list[Completion], rewards: torch.Tensor) -> Trajectory:
        """Advantages and loss weights of a step's completions (weights use global counts, and
        gradients are summed over ranks: exactly the gradient of the loss over every rank's data)."""
        c = self.config
        advantages, zero_std = group_advantages(rewards, c.group_size, c.scale_rewards)
        truncated = torch.tensor([not x.finished for x in completions])
        lengths = torch.tensor([len(x.token_ids) for x in completions])
        active = ~truncated if c.mask_truncated else torch.ones(len(completions), dtype=torch.bool)
        # a flat group (zero advantage) still has a gradient from the KL and entropy terms
        replayed = torch.ones_like(active) if self._flat_groups_train else (~zero_std).repeat_interleave(c.group_size)
        # dapo's denominator: the tokens that carry a loss (rows not replayed carry none)
        total_tokens, total_rows = self.dist.all_sum([int((lengths * active * replayed).sum()), len(completions)],
                                                     self.device)
        weights = token_weights(lengths, c.loss_type, c.max_new_tokens, int(total_rows), int(total_tokens)) * active
        sampled_lp = torch.zeros(len(completions), int(lengths.max()), device=self.device)
        for i, x in enumerate(completions):
            sampled_lp[i, : len(x.logprobs)] = torch.tensor(x.logprobs)
        return Trajectory(completions, rewards, advantages.to(self.device), zero_std, lengths, truncated,
                          weights.to(self.device), sampled_lp, torch.zeros_like(sampled_lp), replayed=replayed)

    def _sample_rows(self, problems, completions, texts, parts, rewards) -> list[dict]:
        """``log_completions`` of this step's completions, the first of each group first."""
        g = self.config.group_size
        order = sorted(range(len(completions)), key=lambda i: (i % g, i // g))[: self.config.log_completions]
        rows = []
        for i in order:
            problem = problems[i // g]
            rows.append({
                "prompt_id": str(problem.extra.get("id", i // g if problem.line is None else problem.line)), "prompt": problem.prompt,
                "completion": texts[i], "reward": float(rewards[i]),
                "rewards": {name: res[i].value for name, res in parts.items()},
                "reasons": {name: res[i].reason for name, res in parts.items() if res[i].reason},
                "length": len(completions[i].token_ids), "finished": completions[i].finished,
                "evictions": completions[i].num_evictions,
            })
        return rows

    def _replay_backward(self, batch: Trajectory, idx: list[int], first: bool) -> None:
        """Replay rows ``idx`` with gradients; each chunk's loss is backpropagated as it comes."""
        c = self.config
        rows = torch.tensor(idx, device=self.device)
        lp, entropy = replay_logprobs(self.pte, [batch.completions[i] for i in idx], c.temperature,
                                      max_chunk=c.replay_chunk, on_chunk=partial(batch.chunk_loss, rows, c, first),
                                      pad_id=self.tokenizer.pad_token_id or 0,
                                      with_entropy=first or c.entropy_coef > 0,
                                      graph=c.replay_graph)
        if first:  # pi_old of the later iterations
            batch.old_lp[rows, : lp.shape[1]] = lp
        if entropy is not None and first:
            batch.stats.entropy += float(entropy.sum())

    def _reduce_and_clip(self) -> torch.Tensor:
        self.dist.sum_gradients(self.params)
        return torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)

    # ------------------------------------------------------------------ loop
    def train(self) -> dict:
        from tqdm import tqdm

        c = self.config
        start = 0
        if c.resume:
            found = agreed_checkpoint(c.output_dir, self.dist.rank, self.dist.world, self.device)
            if found is not None:
                start = load_checkpoint(found, self.pte, self.optimizer, self.scheduler, self.identity)
                self.logger.truncate_after(start)
        if start == 0:
            self.logger.truncate_after(-1)  # a fresh run into a used folder: old steps are not ours
        history = []
        eval_before = self.logger.read(0) if start > 0 else None
        if self.eval_problems and start == 0:
            eval_before = self.evaluate_all()
            self.logger.log(0, eval_before)
        eval_after = None
        bar = tqdm(range(start, c.max_steps), initial=start, total=c.max_steps, desc="train", unit="step",
                   disable=not (self.progress and self.dist.main), dynamic_ncols=True)
        profiler = self._profiler()
        for step in bar:
            metrics = self.step(step)
            last = step + 1 == c.max_steps
            if self.eval_problems and (last or (c.eval_every and (step + 1) % c.eval_every == 0)):
                eval_after = self.evaluate_all()
                metrics.update(eval_after)
            history.append(metrics)
            self.logger.log(step + 1, metrics)
            bar.set_postfix(reward=f"{metrics['reward']:.3f}", step_s=f"{metrics['step_time']:.1f}")
            if profiler is not None:
                profiler.step()
                if step + 1 - start >= c.profile_steps:
                    profiler.stop()
                    profiler = None
            self._warn(step + 1, metrics, bar)
            if self.dist.main and ((c.save_every and (step + 1) % c.save_every == 0) or last):
                self.save(step + 1)
                if c.save_total_limit:
                    prune_checkpoints(c.output_dir, c.save_total_limit)
            self.dist.barrier()
        if profiler is not None:
            profiler.stop()
        note = self.idle_state_note() if self.dist.main and c.max_steps > start else None
        if note:
            bar.write(f"warning: {note}")
        self.logger.close()
        return {"start_step": start, "history": history, "eval_before": eval_before, "eval_after": eval_after,
                "checkpoint": str(latest_checkpoint(c.output_dir) or "")}

    def _warn(self, step: int, metrics: dict, bar) -> None:
        """Say so when a run silently stops learning (the failures TRL users report most)."""
        if not self.dist.main:
            return
        if metrics["completions/clipped_ratio"] >= 0.9:
            bar.write(f"warning: step {step}: {metrics['completions/clipped_ratio']:.0%} of completions hit "
                      f"--max-new-tokens ({self.config.max_new_tokens}); they are scored unfinished "
                      "(raise the limit, or --mask-truncated)")
        self._flat_steps = self._flat_steps + 1 if metrics["frac_reward_zero_std"] >= 1.0 else 0
        if self._flat_steps == 3:
            bar.write(f"warning: steps {step - 2}-{step}: every group had zero reward spread, so there is "
                      "no policy gradient (all answers equally right or wrong: easier data, larger "
                      "--group-size or a higher --temperature)")

    def evaluate_all(self) -> dict:
        """Held-out metrics under the training cache (``eval/...``) and, with ``eval_full_cache``,
        under the full cache (``eval_full/...``)."""
        out = self.evaluate()
        if self.config.eval_full_cache:
            from pte_cache import Full

            # nothing evicted: the bounded cache was the full cache (greedy, tested exact), so the
            # full-cache eval would repeat the same completions
            full = ({**out, "time/eval": 0.0} if out["eval/evictions_per_completion"] == 0
                    else self.evaluate(Full))
            out.update({("time/eval_full" if k == "time/eval" else k.replace("eval/", "eval_full/", 1)): v
                        for k, v in full.items()})
        return out

    def evaluate(self, policy_factory: Callable[[], object] | None = None) -> dict:
        """Greedy held-out accuracy under the training cache, or the cache ``policy_factory``
        builds (each rank a shard, counts summed)."""
        c = self.config
        t0 = time.perf_counter()
        mine = self.eval_problems[self.dist.rank :: self.dist.world]
        sums = evaluate_counts(self.pte, self.tokenizer, mine, self._encode, policy_factory or self.policy_factory,
                               self.reward, self.parts.eos, c.max_new_tokens, c.eval_batch_size)
        keys = sorted(sums)
        totals = self.dist.all_sum([sums[k] for k in keys], self.device)
        out = summarize_counts(dict(zip(keys, totals)))
        out["time/eval"] = time.perf_counter() - t0
        return out

    def save(self, step: int) -> Path:
        recorded = self.run.model_dump(mode="json") if self.run is not None else {"train": self.config.model_dump()}
        return save_checkpoint(self.config.output_dir, step, self.pte, self.parts.manifest, self.optimizer,
                               self.scheduler, recorded, self.identity)

    def _profiler(self):
        if not self.config.profile_steps or not self.dist.main:
            return None
        from torch.profiler import ProfilerActivity, profile

        trace = Path(self.config.output_dir) / "profile"
        trace.mkdir(parents=True, exist_ok=True)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device.type == "cuda" else [])

        def handler(p):
            p.export_chrome_trace(str(trace / "trace.json"))

        prof = profile(activities=activities, on_trace_ready=handler,
                       schedule=torch.profiler.schedule(wait=0, warmup=0, active=self.config.profile_steps))
        prof.start()
        return prof
