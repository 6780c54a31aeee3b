"""Run a pure function over many items in worker processes, each item bounded in time.

No SIGALRM: a worker that misses an item's deadline is killed and replaced, the item is
reported as timed out, and the remaining items go on. Works off the main thread and inside
DDP ranks or other multiprocessing workers (spawned processes, never a fork of a torch process).
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import time
from multiprocessing.connection import wait

TIMEOUT = object()
STARTUP_TIMEOUT = 120.0


def _resolve(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _worker(path: str, conn) -> None:
    fn = _resolve(path)
    conn.send("ready")
    while True:
        batch = conn.recv()
        if batch is None:
            return
        for index, args in batch:
            try:
                result = fn(*args)
            except Exception as err:  # a reward never raises: report, continue
                result = ("error", f"{type(err).__name__}: {err}"[:200])
            conn.send((index, result))


class _Proc:
    def __init__(self, ctx, path):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(path, child), daemon=True)
        self.proc.start()
        child.close()
        self.todo: list[int] = []
        self.deadline = 0.0

    def wait_ready(self) -> None:
        if not self.conn.poll(STARTUP_TIMEOUT) or self.conn.recv() != "ready":
            self.kill()
            raise RuntimeError("reward worker failed to start")

    def kill(self):
        self.proc.kill()
        self.proc.join(1)
        self.conn.close()


class BoundedPool:
    """``pool.map(items)`` -> results in order; a timed-out item yields :data:`TIMEOUT`."""

    def __init__(self, fn_path: str, workers: int = 2, timeout: float = 1.0):
        self.fn_path = fn_path
        self.workers = max(1, workers)
        self.timeout = timeout
        self._ctx = mp.get_context("spawn")
        self._procs: list[_Proc] = []

    def _spawn(self) -> _Proc:
        p = _Proc(self._ctx, self.fn_path)
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
            p.proc.join(1)
            if p.proc.is_alive():
                p.kill()
        self._procs = []

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
