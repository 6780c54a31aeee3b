"""Datasets, JSONL handling and `pte score` (in-process CLI runner)."""

import json
from pathlib import Path

from click.testing import CliRunner

from pte_cli.cli import cli
from pte_cli.datasets import arithmetic, recall

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "arithmetic.jsonl"
RECALL_REWARD = Path(__file__).resolve().parents[3] / "examples" / "recall_reward.py"


def test_arithmetic_answers_are_correct_and_shipped_file_matches():
    rows = arithmetic(300, seed=3)
    for r in rows:
        expr = r["prompt"].removeprefix("What is ").split("?")[0]
        assert int(r["answer"]) == _calc(expr)
    shipped = [json.loads(line) for line in EXAMPLE.read_text().splitlines()]
    assert shipped == arithmetic(256, 0)


def test_data_arithmetic_styles_share_problems_and_differ_in_instruction():
    """`pte data arithmetic` writes the default job's data (worked answers); --style brief asks only
    for the box, on the same problems and answers."""
    worked = [json.loads(x) for x in CliRunner().invoke(cli, ["data", "arithmetic", "--n", "20"]).output.splitlines()]
    res = CliRunner().invoke(cli, ["data", "arithmetic", "--n", "20", "--style", "brief"])
    brief = [json.loads(x) for x in res.output.splitlines()]
    assert worked == arithmetic(20, 0)
    assert all(w["prompt"].endswith("? Explain your steps. Put the final answer in \\boxed{}.") for w in worked)
    assert all(b["prompt"].endswith("? Put the final answer in \\boxed{}.") for b in brief)
    assert [w["prompt"].split("?")[0] for w in worked] == [b["prompt"].split("?")[0] for b in brief]
    assert [w["answer"] for w in worked] == [b["answer"] for b in brief]
    res = CliRunner().invoke(cli, ["data", "arithmetic", "--style", "long"])
    assert res.exit_code == 2 and "'long' is not one of 'worked', 'brief'" in res.output


def _calc(expr):
    """Independent oracle: shunting through Python ints, no eval."""
    tokens = expr.split()
    nums = [int(tokens[0])]
    for op, n in zip(tokens[1::2], tokens[2::2]):
        if op == "*":
            nums[-1] *= int(n)
        else:
            nums.append(int(n) if op == "+" else -int(n))
    return sum(nums)


def test_score_writes_rewards_and_reasons(tmp_path):
    src = tmp_path / "rows.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [
        {"completion": "so \\boxed{4}", "answer": "4", "id": "a"},
        {"completion": "I don't know", "answer": "4", "id": "b"},
    ]) + "\n")
    out = tmp_path / "scored.jsonl"
    res = CliRunner().invoke(cli, ["score", "--input", str(src), "--output", str(out), "-o", "reward.workers=0"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["reward"] for r in rows] == [1.0, 0.0]
    assert rows[1]["reward_reason"] == "no_answer" and rows[0]["id"] == "a" and "reward_reason" not in rows[0]


def test_score_bad_rows_stop_before_writing(tmp_path):
    src = tmp_path / "rows.jsonl"
    src.write_text('{"completion": "\\\\boxed{1}", "answer": "1"}\nnot json\n{"completion": 3, "answer": "1"}\n')
    out = tmp_path / "scored.jsonl"
    res = CliRunner().invoke(cli, ["score", "--input", str(src), "--output", str(out)])
    assert res.exit_code == 2
    assert f"{src}:2: invalid JSON" in res.output and f"{src}:3: field 'completion'" in res.output
    assert not out.exists()
    res = CliRunner().invoke(cli, ["score", "--input", str(src), "--output", str(out), "--skip-bad-rows",
                                   "-o", "reward.workers=0", "--reward", "math", "--reward", "format:0.5"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["reward"] == 1.5 and rows[0]["rewards"] == {"math": 1.0, "format": 1.0}


def test_score_path_never_imports_torch(tmp_path):
    """`pte score` and the registry run without torch: the reward's worker processes and the CLI
    start in a blink instead of importing torch and transformers (~6 s, ~290 MB each)."""
    import subprocess
    import sys

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"completion": "so \\\\boxed{4}", "answer": "4"}\n')
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from pte_cli.cli import cli\n"
        f"res = CliRunner().invoke(cli, ['score', '--reward', 'math', '--input', {str(rows)!r}])\n"
        "assert res.exit_code == 0, res.output\n"
        "assert '\"reward\": 1.0' in res.output, res.output\n"
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


REWARDS_PY = '''
import math


def has_four(completions, answers, **columns):
    return [1.0 if "4" in c else 0.0 for c in completions]


def by_level(completions, answers, level, **columns):  # other JSONL fields arrive as columns
    return [None if lv is None else float(lv) for lv in level]


def nan_on_b(completions, answers, **columns):
    return [math.nan if "b" in c else 0.5 for c in completions]


def raises_on_b(completions, answers, **columns):
    if any("b" in c for c in completions):
        raise ValueError("cannot score b")
    return [1.0 for _ in completions]


def always_raises(completions, answers, **columns):
    raise RuntimeError("broken")


def wrong_length(completions, answers, **columns):
    return [1.0]
'''


def _score(tmp_path, *rewards):
    (tmp_path / "my_rewards.py").write_text(REWARDS_PY)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in [
        {"completion": "a 4", "answer": "4", "level": 2}, {"completion": "b", "answer": "4", "level": None},
        {"completion": "c 4", "answer": "4", "level": 5}]))
    args = ["score", "--input", str(rows)]
    for r in rewards:
        args += ["--reward", r.replace("FILE", str(tmp_path / "my_rewards.py"))]
    res = CliRunner().invoke(cli, args)
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")] if res.exit_code == 0 else []
    return res, lines


def test_reward_as_a_python_function_in_a_file(tmp_path):
    res, rows = _score(tmp_path, "FILE:has_four", "FILE:by_level:0.1")
    assert res.exit_code == 0, res.output
    assert [r["reward"] for r in rows] == [1.2, 0.0, 1.5]
    assert "reward_reason" not in rows[1]  # None: the reward does not apply, no failure


def test_reward_function_failures_never_poison_other_rows(tmp_path):
    res, rows = _score(tmp_path, "FILE:nan_on_b", "FILE:raises_on_b")
    assert res.exit_code == 0, res.output
    assert [r["reward"] for r in rows] == [1.5, 0.0, 1.5]  # the failing row gets 0 from each
    assert "not a finite number: nan" in rows[1]["reward_reason"]
    assert "error: ValueError: cannot score b" in rows[1]["reward_reason"]


def test_reward_function_that_always_fails_stops_with_a_message(tmp_path):
    res, _ = _score(tmp_path, "FILE:always_raises")
    assert res.exit_code == 1 and "failed on all 3 rows" in res.output and "RuntimeError: broken" in res.output
    res, _ = _score(tmp_path, "FILE:wrong_length")
    assert res.exit_code == 1 and "returned 1 values for 3 completions" in res.output


def test_reward_function_spec_errors_are_usage_errors(tmp_path):
    res, _ = _score(tmp_path, "FILE:nope")
    assert res.exit_code == 2 and "has no function 'nope'" in res.output and "has_four" in res.output
    res, _ = _score(tmp_path, str(tmp_path / "missing.py") + ":fn")
    assert res.exit_code == 2 and "file not found" in res.output
    res, _ = _score(tmp_path, "pte_rl.rewards.function:is_function_spec:x")
    assert res.exit_code == 2 and "weight 'x' is not a number" in res.output
    res, rows = _score(tmp_path, "math:0.5")  # a registry name with a weight is not a function
    assert res.exit_code == 0 and rows[0]["reward"] == 0.5


def test_recall_data_and_its_partial_credit_reward(tmp_path):
    """`pte data recall`: the number is the answer, written once at the start; the same seed gives
    the same rows; the example reward gives each right digit (in place) 1/len."""
    rows = recall(50, seed=4, digits=5, filler=2)
    assert rows == recall(50, seed=4, digits=5, filler=2) and rows != recall(50, seed=5, digits=5, filler=2)
    for r in rows:
        assert len(r["answer"]) == 5 and r["answer"].isdigit()
        assert r["prompt"].startswith(f"Remember this number: {r['answer']}. ")
        assert r["prompt"].count(r["answer"]) == 1 and r["prompt"].endswith("Answer with the number only.")
    res = CliRunner().invoke(cli, ["data", "recall", "--n", "3", "--seed", "4", "--digits", "5", "--filler", "2"])
    assert res.exit_code == 0 and [json.loads(line) for line in res.output.splitlines()] == rows[:3]

    # --values draws the digits from a set (38: a two-way choice), --ask sentence puts the digits
    # a few tokens into the answer; the default rows are the ones written before these options
    two = recall(200, seed=4, digits=1, values="83", ask="sentence")
    assert {r["answer"] for r in two} == {"3", "8"} and 60 < sum(r["answer"] == "3" for r in two) < 140
    assert all(r["prompt"].endswith("starts with: The number was") for r in two)
    # the numbers the earlier recall runs trained on (written before --values existed)
    assert [r["answer"] for r in recall(3, seed=0)] == ["6604", "8764", "7593"]
    res = CliRunner().invoke(cli, ["data", "recall", "--n", "2", "--digits", "1", "--values", "38", "--ask", "sentence"])
    assert res.exit_code == 0 and [json.loads(line) for line in res.output.splitlines()] == \
        recall(2, seed=0, digits=1, values="38", ask="sentence")
    for bad in ("3x", "\u00b23", ""):  # a letter, a superscript two (str.isdigit() says yes), nothing
        res = CliRunner().invoke(cli, ["data", "recall", "--values", bad])
        assert res.exit_code == 2 and "--values" in res.output and "digits only" in res.output, (bad, res.output)

    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps({"completion": c, "answer": "6639"}) + "\n" for c in
                           ["6639", "The number is 6631.", "9366", "no digits", "66"]))
    out = tmp_path / "scored.jsonl"
    res = CliRunner().invoke(cli, ["score", "--input", str(src), "--output", str(out), "--reward", f"{RECALL_REWARD}:digits"])
    assert res.exit_code == 0, res.output
    assert [json.loads(line)["reward"] for line in out.read_text().splitlines()] == [1.0, 0.75, 0.0, 0.0, 0.5]
