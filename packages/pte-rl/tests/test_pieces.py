"""Unit tests of the trainer's small pieces: atomic files, step metrics, data order, the
cross-rank reductions."""

import json
import os

import pytest
import torch

from pte_rl.distributed import Dist
from pte_rl.files import atomic_folder, jsonl_line, jsonl_text, write_json_atomic, write_text_atomic
from pte_rl.grpo import StepStats, Trajectory
from pte_rl.metrics import REDUCTIONS, step_metrics
from pte_rl.rewards import RewardResult
from pte_rl.rollout import Completion
from pte_rl.sampler import PromptSampler


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out" / "config.json"
    write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}

    class Boom:
        def __str__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_json_atomic(path, {"a": Boom()})  # fails while serialising, before any byte lands
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(path.parent) == ["config.json"]  # no temporary sibling left behind
    write_text_atomic(path, "x")
    assert path.read_text() == "x" and oct(path.stat().st_mode & 0o777) != "0o600"  # an ordinary file


def test_a_failed_folder_write_leaves_nothing_under_the_final_name(tmp_path):
    final = tmp_path / "adapter"
    with pytest.raises(ValueError), atomic_folder(final) as tmp:
        (tmp / "half.bin").write_bytes(b"1")
        raise ValueError("interrupted")
    assert not final.exists() and os.listdir(tmp_path) == []
    with atomic_folder(final) as tmp:
        (tmp / "whole.bin").write_bytes(b"1")
    assert os.listdir(final) == ["whole.bin"]


def test_jsonl_lines_keep_non_ascii_readable_and_end_with_a_newline():
    assert jsonl_line({"t": "\u00e9\u6570"}) == '{"t": "\u00e9\u6570"}\n'
    assert jsonl_text([{"a": 1}, {"b": 2}]).splitlines() == ['{"a": 1}', '{"b": 2}']


def _trajectory(rewards, lengths, group, sampled, old, replayed=None):
    comps = [Completion([1, 2], list(range(n)), logprobs=[0.0] * n, finished=n < 5, max_cache_tokens=2 + n)
             for n in lengths]
    rewards = torch.tensor(rewards)
    zero_std = rewards.view(-1, group).var(1, unbiased=False) == 0
    return Trajectory(comps, rewards, torch.zeros(len(lengths)), zero_std, torch.tensor(lengths),
                      torch.tensor([n >= 5 for n in lengths]), torch.ones(len(lengths)), sampled, old,
                      replayed=replayed)


def test_step_metrics_by_hand():
    sampled = torch.tensor([[0.1, 0.2, 0.0, 0.0, 0.0], [0.3, 0.3, 0.3, 0.3, 0.3]])
    old = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0], [0.3, 0.3, 0.3, 0.3, 0.2]])
    batch = _trajectory([1.0, 0.0], [2, 5], 2, sampled, old)
    batch.stats = StepStats(loss=0.8, kl=0.7, clip_low=1.0, clip_high=0.0, entropy=3.5, tokens=7.0)
    parts = {"math": [RewardResult(1.0), RewardResult(0.0, "no_answer")]}
    times = {"rollout": 2.0, "reference": 1.0, "train": 3.0, "step": 6.0}
    m = step_metrics(batch, parts, 2, times, skipped=False, grad_norm=0.5, learning_rate=1e-3,
                     device=torch.device("cpu"), dtype=torch.float32)
    assert m["reward"] == 0.5 and m["accuracy"] == 0.5 and m["frac_reward_zero_std"] == 0.0
    assert m["kl"] == pytest.approx(0.1) and m["entropy"] == pytest.approx(0.5) and m["loss"] == pytest.approx(0.4)
    assert m["clip_ratio/low_mean"] == pytest.approx(1 / 7)
    assert m["completions/mean_length"] == 3.5 and m["completions/max_length"] == 5
    assert m["completions/clipped_ratio"] == 0.5 and m["max_cache_tokens"] == 7
    assert m["tokens_per_second"] == 3.5  # 7 tokens in a 2 s rollout
    assert m["logprob_mismatch"] == pytest.approx((0.1 + 0.2 + 0.1) / 7)
    assert m["reward_failures"] == 0 and m["groups_not_replayed"] == 0 and m["dtype"] == "float32"
    skipped = step_metrics(batch, parts, 1, times, skipped=True, grad_norm=0.0, learning_rate=1e-3,
                           device=torch.device("cpu"), dtype=torch.float32)
    for name in ("kl", "entropy", "loss", "grad_norm", "logprob_mismatch", "clip_ratio/low_mean"):
        assert name not in skipped  # not measured on a skipped step: absent, not 0.0


def test_logprob_mismatch_counts_only_replayed_rows():
    sampled = torch.tensor([[0.5, 0.5], [0.2, 0.2], [0.0, 0.0], [0.0, 0.0]])
    old = torch.tensor([[0.5, 0.5], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])  # rows 2-3: never replayed
    replayed = torch.tensor([True, True, False, False])
    batch = _trajectory([1.0, 0.0, 1.0, 1.0], [2, 2, 2, 2], 2, sampled, old, replayed=replayed)
    m = step_metrics(batch, {"r": [RewardResult(v) for v in (1.0, 0.0, 1.0, 1.0)]}, 1,
                     {"rollout": 1.0, "reference": 0.0, "train": 1.0, "step": 2.0}, skipped=False, grad_norm=1.0,
                     learning_rate=1e-3, device=torch.device("cpu"), dtype=torch.float32)
    assert m["logprob_mismatch"] == pytest.approx(0.4 / 4) and m["groups_not_replayed"] == 1


def test_prompt_sampler_shards_one_order_across_ranks_and_epochs():
    problems = list(range(10))
    one = PromptSampler(problems, 3, seed=7)
    steps = [one.for_step(s) for s in range(10)]  # 30 prompts: three epochs
    assert sorted(sum(steps[:3], []) + steps[3][:1]) == problems  # the first epoch is a permutation
    assert steps == [PromptSampler(problems, 3, seed=7).for_step(s) for s in range(10)]  # resumable
    assert steps != [PromptSampler(problems, 3, seed=8).for_step(s) for s in range(10)]
    two = [PromptSampler(problems, 3, seed=7, rank=r, world=2) for r in (0, 1)]
    wide = PromptSampler(problems, 6, seed=7)
    for s in range(4):  # two ranks of 3 prompts take exactly one rank's 6 prompts of the same step
        assert sorted(two[0].for_step(s) + two[1].for_step(s)) == sorted(wide.for_step(s))


def test_single_rank_reductions_leave_metrics_and_gradients_alone():
    one = Dist()
    metrics = {"reward": 0.5, "step_time": 3.0, "dtype": "float32"}
    assert one.reduce_metrics(metrics, REDUCTIONS, "cpu") == metrics
    assert one.all_sum([1.0, 2.0], "cpu") == [1.0, 2.0]
    p = torch.nn.Parameter(torch.ones(3))
    one.sum_gradients([p])
    assert torch.equal(p.grad, torch.zeros(3))  # no gradient: zeros, so the optimizer sees one
    assert REDUCTIONS["step_time"] == "max" and REDUCTIONS["reward_failures"] == "sum"
