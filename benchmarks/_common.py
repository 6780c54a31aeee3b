"""Helpers shared by the benchmark scripts: a peak-RSS sampler and subprocess runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRSS:
    """Samples this process's resident memory every 5 ms while active (CPU memory, Linux)."""

    def __enter__(self):
        self.start = rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def run_isolated(script: str, args: dict) -> dict:
    """Run ``script --case JSON`` in a fresh interpreter so memory numbers do not mix."""
    out = subprocess.run([sys.executable, script, "--case", json.dumps(args)], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:] or ["failed"], **args}
    return json.loads(out.stdout.strip().splitlines()[-1])
