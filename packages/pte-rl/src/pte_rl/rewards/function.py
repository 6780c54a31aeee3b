"""Rewards written as plain Python functions, as in TRL: no packaging, no plugin.

    --reward path/to/file.py:fn[:weight]      a function in a file
    --reward package.module:fn[:weight]       a function in an importable module

``fn(completions, answers, **columns)`` returns one float per completion, or None where the
reward does not apply (the row then gets 0 from this reward and no failure is counted). A value
that is not a finite number, or a call that raises (the batch is then retried row by row to find
the rows it fails on), never poisons the group's advantages: those rows get 0 with a reason
(counted in the ``reward_failures`` metric) and a warning names the reward and the row. A wrong
number of values, or a batch where no row could be scored, stops the run:
:class:`RewardFunctionError`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

from .base import RewardResult

log = logging.getLogger("pte")
# NAME:WEIGHT is a registry name; anything with a .py file or a dotted/underscored module before
# the function is a function spec
_SPEC = re.compile(r"^(?P<target>[^:]+):(?P<fn>[A-Za-z_]\w*)(?::(?P<weight>[^:]+))?$")


class RewardFunctionError(ValueError):
    """A reward function that cannot be loaded, or that failed on every row of a batch."""


def is_function_spec(value: str) -> bool:
    """True for ``file.py:fn[:w]`` and ``module:fn[:w]``; False for registry ``name[:weight]``."""
    m = _SPEC.match(value)
    if m is None:
        return False
    if m.group("target").endswith(".py"):
        return True
    try:  # "math:0.5" is a registry name with a weight
        float(m.group("fn"))
        return False
    except ValueError:
        return True


def split_spec(value: str) -> tuple[str, float]:
    """``("file.py:fn", weight)`` from ``file.py:fn[:weight]`` (weight 1 when absent)."""
    m = _SPEC.match(value)
    if m is None:
        raise RewardFunctionError(f"reward {value!r}: expected FILE.py:FUNCTION[:WEIGHT] or MODULE:FUNCTION[:WEIGHT]")
    weight = m.group("weight")
    try:
        w = 1.0 if weight is None else float(weight)
    except ValueError:
        raise RewardFunctionError(f"reward {value!r}: weight {weight!r} is not a number") from None
    return f"{m.group('target')}:{m.group('fn')}", w


@functools.cache
def load_function(spec: str) -> Callable:
    """The function named by ``file.py:fn`` or ``module:fn``; errors say what is wrong. Cached:
    the CLI checks a spec when it parses it and the reward uses it later, and a user's file is
    executed once, not twice."""
    target, _, name = spec.rpartition(":")
    if target.endswith(".py"):
        path = Path(target).expanduser()
        if not path.is_file():
            raise RewardFunctionError(f"reward {spec}: file not found: {path}")
        module_name = f"pte_user_reward_{abs(hash(str(path.resolve())))}"
        loader = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader)
        sys.modules[module_name] = module
        try:
            loader.loader.exec_module(module)
        except Exception as err:
            del sys.modules[module_name]
            raise RewardFunctionError(f"reward {spec}: {path} failed to import: {type(err).__name__}: {err}") from None
    else:
        try:
            module = importlib.import_module(target)
        except Exception as err:
            raise RewardFunctionError(f"reward {spec}: cannot import module {target!r}: {err}") from None
    fn = getattr(module, name, None)
    if fn is None:
        found = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
        raise RewardFunctionError(f"reward {spec}: {target} has no function {name!r} (it has: {', '.join(found) or 'none'})")
    if not callable(fn):
        raise RewardFunctionError(f"reward {spec}: {name!r} in {target} is not callable")
    return fn


class FunctionReward:
    """Adapts ``fn(completions, answers, **columns) -> list[float | None]`` to the Reward protocol."""

    def __init__(self, spec: str, fn: Callable | None = None):
        self.name = spec
        self.fn = fn if fn is not None else load_function(spec)

    def score(self, completions, answers, **columns) -> list[RewardResult]:
        n = len(completions)
        try:
            values = list(self.fn(list(completions), list(answers), **columns))
        except Exception:
            values = None  # find the rows it fails on, one at a time
        if values is not None and len(values) != n:
            raise RewardFunctionError(f"reward {self.name} returned {len(values)} values for {n} completions")
        out, failed = [], 0
        for i in range(n):
            result = self._row(i, completions, answers, columns) if values is None else self._value(i, values[i])
            failed += result.failed
            out.append(result)
        if n and failed == n:
            raise RewardFunctionError(f"reward {self.name} failed on all {n} rows of a batch "
                                      f"(first: {out[0].reason})")
        return out

    def _row(self, i, completions, answers, columns) -> RewardResult:
        try:
            got = list(self.fn([completions[i]], [answers[i]], **{k: [v[i]] for k, v in columns.items()}))
        except Exception as err:
            reason = f"error: {type(err).__name__}: {err}"[:200]
            log.warning("reward %s raised on row %d: %s; scored 0", self.name, i, reason)
            return RewardResult(0.0, reason, failed=True)
        if len(got) != 1:
            return RewardResult(0.0, f"returned {len(got)} values for 1 completion", failed=True)
        return self._value(i, got[0])

    def _value(self, i, v) -> RewardResult:
        if v is None:
            return RewardResult(0.0)
        try:
            x = float(v)
        except (TypeError, ValueError):
            x = math.nan
        if not math.isfinite(x):
            log.warning("reward %s: row %d returned %r; scored 0", self.name, i, v)
            return RewardResult(0.0, f"not a finite number: {v!r}"[:200], failed=True)
        return RewardResult(x)
