"""GRPO maths against hand computations, and one real training step on a tiny model."""

import json
import math

import pytest
import torch
from tiny_models import tiny_llama

from pte_cache import LRUPromptKeep, PolicyConfig
from pte_lora import AdapterManifest, LoRAConfig
from pte_rl import PTEModel, SamplingConfig, replay_logprobs, sample
from pte_rl.checkpoint import CheckpointError, latest_checkpoint, run_identity
from pte_rl.data import DataError, Problem, load_problems
from pte_rl.grpo import group_advantages, per_token_loss, token_weights
from pte_rl.rewards import RewardResult, WeightedSum
from pte_rl.trainer import TrainConfig, Trainer, TrainerParts
from pte_thought import ProgressiveEncoder, ThoughtConfig


def test_group_advantages_z_score_eps_inside_sqrt():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    adv, zero = group_advantages(r, 4, eps=1e-6)
    mean, var = 0.25, 0.1875
    assert torch.allclose(adv[:4], (r[:4] - mean) / math.sqrt(var + 1e-6))
    assert torch.equal(adv[4:], torch.zeros(4))
    assert zero.tolist() == [False, True]
    unscaled, _ = group_advantages(r, 4, scale=False)
    assert torch.allclose(unscaled[:4], r[:4] - mean)


def test_token_weights_match_trl_meanings():
    lengths = torch.tensor([2, 4])
    assert torch.allclose(token_weights(lengths, "grpo", 10, 2, 6), torch.tensor([1 / 4, 1 / 8]))
    assert torch.allclose(token_weights(lengths, "dr_grpo", 10, 2, 6), torch.tensor([1 / 20, 1 / 20]))
    assert torch.allclose(token_weights(lengths, "dapo", 10, 2, 6), torch.tensor([1 / 6, 1 / 6]))
    with pytest.raises(ValueError):
        token_weights(lengths, "bnpo", 10, 2, 6)


def test_per_token_loss_clipping_and_k3_kl():
    new = torch.tensor([[0.0, math.log(1.5)], [math.log(0.5), 0.0]], requires_grad=True)
    old = torch.zeros(2, 2)
    ref = torch.tensor([[0.1, 0.0], [0.0, -0.2]])
    adv = torch.tensor([1.0, -1.0])
    loss, st = per_token_loss(new, old, ref, adv, beta=0.5, epsilon=0.2)
    ratio = new.detach().exp()
    surrogate = -torch.minimum(ratio * adv[:, None], ratio.clamp(0.8, 1.2) * adv[:, None])
    delta = ref - new.detach()
    kl = delta.exp() - delta - 1
    assert torch.allclose(loss.detach(), surrogate + 0.5 * kl, atol=1e-6)
    assert st["clip_high"].tolist() == [[0.0, 1.0], [0.0, 0.0]]
    assert st["clip_low"].tolist() == [[0.0, 0.0], [1.0, 0.0]]
    loss.sum().backward()
    assert new.grad[0, 1] == pytest.approx(0.5 * (1 - math.exp(-math.log(1.5))))  # clipped: only KL grad


def test_state_does_not_depend_on_batch_layout():
    """The same row alone or inside a left-padded batch gives the same states (<= 1e-5)."""
    torch.manual_seed(0)
    pte = PTEModel(tiny_llama(), ProgressiveEncoder(ThoughtConfig(global_tokens=8, rank=4)))
    prompts = [[5, 6, 7], [10, 11, 12, 13, 14, 15, 16, 17]]
    policy = lambda: LRUPromptKeep(PolicyConfig(cache_window=16))  # noqa: E731
    states = {}

    def capture(batch, key, row):
        state = pte.new_state(len(batch))
        cache = pte.new_cache(policy(), state)
        from pte_rl.rollout import left_pad

        ids, real = left_pad(batch, 0, pte.device)
        with torch.no_grad():
            pte.forward(ids, real, cache, state)
            for t in range(20):
                pte.forward(torch.full((len(batch), 1), 9 + t), torch.ones(len(batch), 1, dtype=torch.bool),
                            cache, state)
        states[key] = [s[row] for s in state.layers]
        return state

    s_alone = capture(prompts[:1], "alone", 0)
    capture(prompts, "batched", 0)
    assert int(s_alone.num_updates[0]) >= 2
    for a, b in zip(states["alone"], states["batched"]):
        assert torch.allclose(a, b, atol=1e-5)


class HighIdsReward:
    """Deterministic toy reward: the mean token id (scaled to [0, 1]). Continuous, so every group
    of distinct completions has spread and no step of these tests is skipped by chance."""

    name = "high-ids"

    def score(self, completions, answers, **columns):
        return [RewardResult(sum(map(int, c.split())) / (97 * max(len(c.split()), 1))) for c in completions]


class ConstantReward:
    name = "zero"

    def score(self, completions, answers, **columns):
        return [RewardResult(0.0) for _ in completions]


class Tok:
    pad_token_id = 0

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(str(i) for i in ids)


def make_trainer(tmp_path, reward=None, **overrides):
    torch.manual_seed(0)
    pte = PTEModel(tiny_llama(), ProgressiveEncoder(ThoughtConfig(global_tokens=8, rank=4)))
    problems = [Problem(f"p{i}", "1", {}) for i in range(4)]
    fields = dict(output_dir=str(tmp_path), max_steps=2, prompts_per_step=2, group_size=4, max_new_tokens=24,
                  learning_rate=1e-2, tensorboard=False)
    cfg = TrainConfig(**{**fields, **overrides})
    manifest = AdapterManifest(pte_version="0", lora=LoRAConfig(r=4, global_tokens=8), encoder="progressive")
    prompt_ids = lambda text: [4, 5, 6, int(text[1:]) + 10]  # noqa: E731
    reward = reward or WeightedSum([("high-ids", HighIdsReward(), 1.0)])
    parts = TrainerParts(pte, Tok(), lambda: LRUPromptKeep(PolicyConfig(cache_window=14)), reward,
                         problems, manifest, eos=[3], prompt_ids=prompt_ids)
    return Trainer(cfg, parts, progress=False)


class FirstGroupSpread:
    """Spread in the first prompt's group only (every other completion right); records its columns."""

    name = "first-group"

    def __init__(self):
        self.columns = []

    def score(self, completions, answers, prompts=None, **columns):
        self.columns.append({"prompts": prompts, **columns})
        return [RewardResult(float(p == prompts[0] and i % 2 == 0)) for i, p in enumerate(prompts)]


def test_rewards_get_prompts_token_lengths_and_truncation(tmp_path):
    reward = FirstGroupSpread()
    trainer = make_trainer(tmp_path, reward=WeightedSum([("first-group", reward, 1.0)]), max_steps=1)
    trainer.step(0)
    cols = reward.columns[0]
    assert cols["prompts"] == [p.prompt for p in trainer.problems_for(0) for _ in range(4)]
    assert len(cols["completion_ids"]) == 8 and cols["completion_lengths"] == [len(x) for x in cols["completion_ids"]]
    assert all(isinstance(t, bool) for t in cols["truncated"])
    assert [n == 24 for n in cols["completion_lengths"]] == cols["truncated"]  # eos=[3] or the 24-token limit


def _replay_step(tmp_path, replay_all: bool):
    """One beta-0 step on the first-group-spread reward: (sorted replayed rows, metrics, gradient)."""
    import dataclasses

    trainer = make_trainer(tmp_path, reward=WeightedSum([("first-group", FirstGroupSpread(), 1.0)]),
                           beta=0.0, loss_type="grpo", max_steps=1, replay_graph="exact")
    trainer.optimizer.step = lambda: None
    plain, run, rows = trainer.trajectory, trainer._replay_backward, []
    if replay_all:  # the oracle: every row replayed
        trainer.trajectory = lambda comps, rewards: dataclasses.replace(
            plain(comps, rewards), replayed=torch.ones(len(comps), dtype=torch.bool))
    trainer._replay_backward = lambda batch, idx, first: rows.extend(idx) or run(batch, idx, first)
    metrics = trainer.step(0)
    return sorted(rows), metrics, torch.cat([p.grad.flatten() for p in trainer.params])


def test_groups_without_spread_are_not_replayed_when_beta_is_0(tmp_path):
    """With beta 0 a flat group has no gradient: skipping its replay gives the same gradient
    (grpo weights do not depend on the step's token count; exact replay, whose gradient does not
    depend on which rows share a sub-batch) and is counted."""
    rows, metrics, grad = _replay_step(tmp_path / "skip", replay_all=False)
    all_rows, all_metrics, all_grad = _replay_step(tmp_path / "all", replay_all=True)
    assert rows == [0, 1, 2, 3] and metrics["groups_not_replayed"] == 1
    assert all_rows == list(range(8)) and all_metrics["groups_not_replayed"] == 0
    assert grad.abs().sum() > 0
    assert (grad - all_grad).abs().max() <= 1e-6 * all_grad.abs().max()  # fp32 round-off


def test_training_step_updates_adapter_only_and_loss_types_differ(tmp_path):
    """Every loss type moves only the adapter; on the same rollouts the three give different
    gradients (each averages token losses its own way), so a loss_type that is ignored fails."""
    grads = {}
    for loss_type in ("grpo", "dr_grpo", "dapo"):
        trainer = make_trainer(tmp_path / loss_type, loss_type=loss_type, num_iterations=2)
        base = {n: p.clone() for n, p in trainer.pte.model.named_parameters() if "lora_" not in n}
        adapter = [p.clone() for p in trainer.params]
        trainer.optimizer.step = lambda: None  # keep the first iteration's gradient for comparison
        metrics = trainer.step(0)
        for key in ("reward", "kl", "entropy", "loss", "grad_norm", "evictions_per_completion",
                    "state_updates_per_completion", "evicted_tokens_per_event", "peak_memory_mb",
                    "completions/clipped_ratio", "frac_reward_zero_std", "reward/high-ids/mean"):
            assert key in metrics and math.isfinite(metrics[key]), key
        assert metrics["skipped_step"] == 0 and metrics["grad_norm"] > 0
        assert metrics["evictions_per_completion"] > 0 and metrics["evicted_tokens_per_event"] >= 1
        assert metrics["state_updates_per_completion"] == metrics["evictions_per_completion"]
        grads[loss_type] = torch.cat([p.grad.flatten() for p in trainer.params])
        for n, p in trainer.pte.model.named_parameters():
            if "lora_" not in n:
                assert torch.equal(p, base[n]), n
        assert all(torch.equal(a, p) for a, p in zip(adapter, trainer.params))  # optimizer.step was held
        fresh = make_trainer(tmp_path / (loss_type + "-moves"), loss_type=loss_type)
        before = [p.clone() for p in fresh.params]
        fresh.step(0)
        assert any(not torch.equal(a, p) for a, p in zip(before, fresh.params))
    for a, b in (("grpo", "dr_grpo"), ("grpo", "dapo"), ("dr_grpo", "dapo")):
        cos = float(torch.nn.functional.cosine_similarity(grads[a], grads[b], dim=0))
        assert not torch.allclose(grads[a], grads[b], rtol=1e-3, atol=0), (a, b)
        assert cos > 0.5, (a, b, cos)  # the same direction of improvement, weighted differently


def test_entropy_bonus_enters_the_gradient_linearly(tmp_path):
    """--entropy-coef c subtracts c x token entropy from each token's loss: on the same rollouts the
    gradient moves by c times one fixed direction (the entropy's gradient, itself checked against
    autograd in test_replay_exact), and the entropy metric does not change."""
    grads, entropy = {}, {}
    for coef in (0.0, 0.05, 0.1):
        trainer = make_trainer(tmp_path / str(coef), entropy_coef=coef, max_grad_norm=1e9)
        trainer.optimizer.step = lambda: None  # keep the gradient
        metrics = trainer.step(0)
        grads[coef] = torch.cat([p.grad.flatten() for p in trainer.params])
        entropy[coef] = metrics["entropy"]
    once, twice = grads[0.05] - grads[0.0], grads[0.1] - grads[0.0]
    assert once.abs().max() > 1e-3 * grads[0.0].abs().max()  # the bonus is not ignored
    assert (twice - 2 * once).abs().max() <= 1e-4 * twice.abs().max()
    assert entropy[0.0] == entropy[0.05] == entropy[0.1]


def test_compile_decodes_rollouts_with_the_compiled_step_and_trains_as_eager(tmp_path):
    """--compile: rollouts run the compiled decode step (static cache); the same rollouts as eager,
    so the same rewards and the same update (fp32 round-off)."""
    eager = make_trainer(tmp_path / "eager")
    compiled = make_trainer(tmp_path / "compiled", compile=True)
    assert eager.pte.decode_step is None and compiled.pte.decode_step is not None
    m_eager, m_compiled = eager.step(0), compiled.step(0)
    assert m_compiled["reward"] == m_eager["reward"]
    assert m_compiled["evictions_per_completion"] == m_eager["evictions_per_completion"] > 0
    for a, b in zip(eager.params, compiled.params):
        assert (a - b).abs().max() <= 1e-5 * max(a.abs().max(), 1e-3)


def test_pi_old_is_the_first_replay_not_the_sampler(tmp_path):
    """Sampler log-probs that drift from replay (bf16, other kernels) change nothing but the metric."""
    plain = make_trainer(tmp_path / "a", num_iterations=2)
    m_plain = plain.step(0)
    assert m_plain["logprob_mismatch"] < 1e-4  # fp32: replay reproduces the sampler

    shifted = make_trainer(tmp_path / "b", num_iterations=2)
    rollout = shifted.rollout

    def drifting_rollout(problems, step):
        out = rollout(problems, step)
        for c in out:
            c.logprobs = [lp - 0.5 for lp in c.logprobs]
        return out

    shifted.rollout = drifting_rollout
    m_shifted = shifted.step(0)
    assert abs(m_shifted["logprob_mismatch"] - 0.5) < 1e-4
    for a, b in zip(plain.params, shifted.params):
        assert torch.equal(a, b)
    assert m_shifted["clip_ratio/low_mean"] == m_plain["clip_ratio/low_mean"]


def test_trainer_resume_matches_straight_run(tmp_path):
    straight = make_trainer(tmp_path / "a", max_steps=4)
    straight.train()
    first = make_trainer(tmp_path / "b", max_steps=2, save_every=2)
    first.train()
    resumed = make_trainer(tmp_path / "b", max_steps=4, resume=True)
    out = resumed.train()
    assert out["start_step"] == 2
    for a, b in zip(straight.params, resumed.params):
        assert torch.equal(a, b)
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4


def test_data_errors_name_file_and_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "answer": "1"}\n{bad json\n{"prompt": "", "answer": "1"}\n{"prompt": "b"}\n')
    with pytest.raises(DataError) as err:
        load_problems(path)
    msg = str(err.value)
    assert f"{path}:2: invalid JSON" in msg and f"{path}:3: field 'prompt' is empty" in msg
    assert f"{path}:4: field 'answer' missing" in msg
    problems, bad = load_problems(path, skip_bad_rows=True)
    assert [p.prompt for p in problems] == ["a"] and len(bad) == 3


def test_replay_sampling_logprobs_use_temperature():
    pte = PTEModel(tiny_llama(), ProgressiveEncoder(ThoughtConfig(global_tokens=8, rank=4)))
    comps = sample(pte, [[5, 6, 7]], LRUPromptKeep(PolicyConfig(cache_window=10)),
                   SamplingConfig(max_new_tokens=12, temperature=0.7), eos_ids=[], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        lp, _ = replay_logprobs(pte, comps, temperature=0.7)
    assert torch.allclose(lp[0], torch.tensor(comps[0].logprobs), atol=1e-4)


def test_resume_refuses_a_different_run(tmp_path):
    make_trainer(tmp_path, max_steps=1).train()
    changed = make_trainer(tmp_path, max_steps=2, resume=True, group_size=2, loss_type="grpo")
    with pytest.raises(CheckpointError) as err:
        changed.train()
    msg = str(err.value)
    assert "group_size: checkpoint has 4, this run has 2" in msg
    assert "loss_type: checkpoint has 'dapo', this run has 'grpo'" in msg
    # harmless changes (more steps, another save frequency, logging) resume
    out = make_trainer(tmp_path, max_steps=2, resume=True, save_every=1, tensorboard=False).train()
    assert out["start_step"] == 1


def test_resume_refuses_changed_training_data(tmp_path):
    make_trainer(tmp_path, max_steps=1).train()
    other = make_trainer(tmp_path, max_steps=2, resume=True)
    other.problems = other.problems[:3]
    other.identity = run_identity(other.parts.manifest, other.config.model_dump(), other.problems)
    with pytest.raises(CheckpointError, match=r"data: checkpoint has '4 problems, sha256 [0-9a-f]+', this run has '3 problems"):
        other.train()


class _Payload:
    """Unpickling this runs code: ``os.system`` with a marker file (what a hostile checkpoint does)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_trainer_state_with_pickled_code_is_refused_not_run(tmp_path):
    make_trainer(tmp_path, max_steps=1).train()
    state_file = latest_checkpoint(tmp_path) / "trainer_state.pt"
    state = torch.load(state_file, weights_only=True)
    marker = tmp_path / "pwned"
    state["config"]["note"] = _Payload(marker)
    torch.save(state, state_file)
    with pytest.raises(CheckpointError, match="refusing to load: it holds objects other than tensors"):
        make_trainer(tmp_path, max_steps=2, resume=True).train()
    assert not marker.exists()


def test_completions_log_checkpoint_pruning_and_warnings(tmp_path, capsys):
    import json

    trainer = make_trainer(tmp_path, max_steps=4, save_every=1, save_total_limit=2, log_completions=3,
                           max_new_tokens=2)  # short enough that some steps hit the limit
    trainer.train()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-000003", "step-000004"]  # the newest two, nothing half-written left
    rows = [json.loads(x) for x in (tmp_path / "completions.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    first = rows[0]
    assert {"prompt_id", "prompt", "completion", "reward", "rewards", "length", "evictions", "finished"} <= set(first)
    assert set(first["rewards"]) == {"high-ids"} and first["length"] >= 1
    assert rows[0]["prompt"] != rows[1]["prompt"]  # the first completion of each group first
    clipped = [json.loads(x)["completions/clipped_ratio"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    warned = capsys.readouterr().out.count("hit --max-new-tokens")
    assert sum(c >= 0.9 for c in clipped) >= 1, clipped  # otherwise the check below is 0 == 0
    assert warned == sum(c >= 0.9 for c in clipped), (warned, clipped)
    # resume from step 3: the completions of step 4 are redone, not duplicated
    resumed = make_trainer(tmp_path, max_steps=4, save_every=1, save_total_limit=2, log_completions=3, resume=True,
                           max_new_tokens=2)
    (tmp_path / "checkpoints" / "step-000004").rename(tmp_path / "checkpoints" / "gone")
    resumed.train()
    steps = [json.loads(x)["step"] for x in (tmp_path / "completions.jsonl").read_text().splitlines()]
    assert steps == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]


def test_warning_when_every_group_is_flat(tmp_path, capsys):
    """beta 0: a step whose every group is flat has no gradient at all and is skipped."""
    trainer = make_trainer(tmp_path, max_steps=3, max_new_tokens=2, beta=0.0)
    trainer.reward = WeightedSum([("zero", ConstantReward(), 1.0)])
    trainer.train()
    out = capsys.readouterr().out
    assert out.count("every group had zero reward spread") == 1  # once, not every step
    steps = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 3 and all(m["skipped_step"] == 1 for m in steps)
    # nothing was replayed: no kl/loss/mismatch to report, rather than a 0.0 that reads as measured
    replayed = {"kl", "entropy", "loss", "grad_norm", "logprob_mismatch", "clip_ratio/low_mean"}
    assert all(not replayed & set(m) and m["reward"] == 0.0 for m in steps)
    assert "hit --max-new-tokens (2)" in out


@pytest.mark.parametrize("extra", [{"beta": 0.1}, {"beta": 0.0, "entropy_coef": 0.01}])
def test_flat_step_still_trains_on_its_kl_or_entropy_term(tmp_path, extra):
    """Every group flat, but the loss has a KL (or entropy) term: the step is not skipped, every
    row is replayed and the adapter and encoder move (as in TRL, where zero advantages leave the
    KL term acting). Skipping it dropped the pull towards the full-cache reference exactly when
    the reward says nothing."""
    # 24 new tokens under a 14-token cache: the policy evicts, the full-cache reference does not,
    # so the two differ from the first step (with nothing evicted the KL gradient is exactly 0)
    trainer = make_trainer(tmp_path, max_steps=2, **extra)
    trainer.reward = WeightedSum([("zero", ConstantReward(), 1.0)])
    lora = {n: p.detach().clone() for n, p in trainer.pte.model.named_parameters() if "lora_" in n}
    encoder = {n: p.detach().clone() for n, p in trainer.pte.encoder.named_parameters()}
    trainer.train()
    steps = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 2 and all(m["skipped_step"] == 0 and m["frac_reward_zero_std"] == 1.0 for m in steps)
    assert all(m["grad_norm"] > 0 and m["groups_not_replayed"] == 0 for m in steps)
    assert lora and any(not torch.equal(p, lora[n]) for n, p in trainer.pte.model.named_parameters() if "lora_" in n)
    assert any(not torch.equal(p, encoder[n]) for n, p in trainer.pte.encoder.named_parameters())


def test_idle_thought_state_is_reported_once_with_the_numbers(tmp_path, capsys):
    """A progressive encoder whose cache never fills says so at the end of the run, once, with the
    window and the longest row; a run that evicts says nothing."""
    trainer = make_trainer(tmp_path / "idle", max_steps=2, max_new_tokens=4)  # 4 + 4 tokens < window 14
    trainer.train()
    out = capsys.readouterr().out
    assert out.count("the cache never filled: the thought state never updated") == 1, out
    import re

    longest = re.search(r"window 14 tokens, prompt included; longest row (\d+) tokens", out)
    assert longest and 5 <= int(longest.group(1)) <= 8, out  # a 4-token prompt + at most 4 new tokens
    lines = [json.loads(x) for x in (tmp_path / "idle" / "metrics.jsonl").read_text().splitlines()]
    assert all(x["evictions_per_completion"] == 0 == x["state_updates_per_completion"] for x in lines)
    trainer = make_trainer(tmp_path / "busy", max_steps=1)  # 24 new tokens: evicts
    trainer.train()
    assert "thought state" not in capsys.readouterr().out
