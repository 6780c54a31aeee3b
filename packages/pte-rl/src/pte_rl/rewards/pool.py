"""Run a pure function over many items in worker processes, each item bounded in time.

No SIGALRM: a worker that misses an item's deadline is killed and replaced, the item is
reported as timed out, and the remaining items go on. Works off the main thread and inside
DDP ranks or other multiprocessing workers.

Workers are fresh interpreters started as ``python -m pte_rl.rewards.worker`` (never a fork of a
torch process), talking over a socket pair. Not multiprocessing's spawn: that re-imports the
parent's main module in every worker (for the ``pte`` command: the CLI, torch and transformers,
~6 s and ~290 MB each on a slow machine). A worker imports only the scoring function's module.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection, wait

TIMEOUT = object()
STARTUP_TIMEOUT = 120.0


def _resolve(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def serve(path: str, conn) -> None:
    """The worker's loop: score batches from ``conn`` with the function at ``path``."""
    fn = _resolve(path)
    conn.send("ready")
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if batch is None:
            return
        for index, args in batch:
            try:
                result = fn(*args)
            except Exception as err:  # a reward never raises: report, continue
                result = ("error", f"{type(err).__name__}: {err}"[:200])
            conn.send((index, result))


class _Proc:
    def __init__(self, path):
        ours, theirs = socket.socketpair()
        # the worker finds modules exactly where this process does (editable installs, tests)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pte_rl.rewards.worker", path, str(theirs.fileno())], pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL, env=env,
        )
        theirs.close()
        self.conn = Connection(ours.detach())
        self.todo: list[int] = []
        self.deadline = 0.0

    def wait_ready(self) -> None:
        if not self.conn.poll(STARTUP_TIMEOUT) or self.conn.recv() != "ready":
            self.kill()
            raise RuntimeError("reward worker failed to start")

    def kill(self):
        self.proc.kill()
        self.proc.wait(5)
        self.conn.close()


class BoundedPool:
    """``pool.map(items)`` -> results in order; a timed-out item yields :data:`TIMEOUT`."""

    def __init__(self, fn_path: str, workers: int = 2, timeout: float = 1.0):
        self.fn_path = fn_path
        self.workers = max(1, workers)
        self.timeout = timeout
        self._procs: list[_Proc] = []

    def _spawn(self) -> _Proc:
        p = _Proc(self.fn_path)
        p.wait_ready()
        return p

    def map(self, items: list[tuple]) -> list:
        if not items:
            return []
        while len(self._procs) < min(self.workers, len(items)):
            self._procs.append(self._spawn())
        results: list = [None] * len(items)
        pending = list(range(len(items)))
        share = -(-len(items) // len(self._procs))
        active = []
        for p in self._procs:
            chunk, pending = pending[:share], pending[share:]
            if chunk:
                self._send(p, chunk, items)
                active.append(p)
        while active:
            now = time.monotonic()
            ready = wait([p.conn for p in active], timeout=max(0.0, min(p.deadline for p in active) - now))
            now = time.monotonic()
            for p in list(active):
                if p.conn in ready:
                    try:
                        index, result = p.conn.recv()
                    except (EOFError, OSError):
                        self._replace(p, active, results, ("error", "worker died"), items)
                        continue
                    results[index] = result
                    p.todo.remove(index)
                    p.deadline = now + self.timeout
                    if not p.todo:
                        active.remove(p)
                elif now >= p.deadline:
                    self._replace(p, active, results, TIMEOUT, items)
        return results

    def _send(self, p: _Proc, chunk: list[int], items) -> None:
        p.todo = list(chunk)
        p.deadline = time.monotonic() + self.timeout
        p.conn.send([(i, items[i]) for i in chunk])

    def _replace(self, p: _Proc, active, results, outcome, items) -> None:
        results[p.todo[0]] = outcome
        rest = p.todo[1:]
        p.kill()
        active.remove(p)
        fresh = self._spawn()
        self._procs[self._procs.index(p)] = fresh
        if rest:
            self._send(fresh, rest, items)
            active.append(fresh)

    def close(self) -> None:
        for p in self._procs:
            try:
                p.conn.send(None)
            except OSError:
                pass
            try:
                p.proc.wait(1)
            except subprocess.TimeoutExpired:
                pass
            if p.proc.poll() is None:
                p.kill()
            else:
                p.conn.close()
        self._procs = []

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
