"""Helpers shared by the benchmark scripts: the machine's identity, a peak-RSS sampler and subprocess runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

# Kernel limits that make a fast CPU run the code paths of an AVX2-only one (see machine())
AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def machine() -> dict:
    """What the numbers were measured on: CPU model, the vector flags that change kernel choice,
    cores, torch version and any ISA limit in force. Numbers from different machines (this
    project's range from AMX Xeons to AVX2-only EPYCs, ~3x apart) are never to be compared."""
    import platform

    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and model in ("unknown", "", "x86_64"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    try:
        import torch

        version = torch.__version__
    except ImportError:
        version = None
    limits = {k: os.environ[k] for k in AVX2_ONLY if k in os.environ}
    return {"cpu": model, "cpu_flags": sorted(f for f in _FLAGS if f in flags), "cores": os.cpu_count(),
            "torch": version, "isa_limits": limits}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cuda():
    """torch.cuda when a GPU is in use here, else None (no CUDA context is created for the check)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda if torch.cuda.is_available() else None


class PeakRSS:
    """Samples this process's resident memory every 5 ms while active (CPU memory, Linux); on a GPU
    also the CUDA allocator's peaks over the same span (:meth:`gpu`): RSS alone misses GPU memory."""

    def __enter__(self):
        cuda = _cuda()
        if cuda is not None:
            cuda.synchronize()
            cuda.reset_peak_memory_stats()
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
        cuda = _cuda()
        self.cuda = None if cuda is None else {
            "cuda_max_allocated_mb": cuda.max_memory_allocated() / 2**20,
            "cuda_max_reserved_mb": cuda.max_memory_reserved() / 2**20,
        }

    def gpu(self) -> dict:
        """``cuda_max_allocated_mb`` / ``cuda_max_reserved_mb`` of the span; empty on a CPU."""
        return {k: round(v, 1) for k, v in (self.cuda or {}).items()}


def failure(returncode: int, stderr: str) -> dict:
    """How a benchmark case ended that did not finish: its last error line, its exit status, and
    whether it ran out of memory (a CUDA / torch OOM error, or SIGKILL, which on Linux is almost
    always the kernel's OOM killer: it leaves no message)."""
    last = stderr.strip().splitlines()[-1:] or [f"exit status {returncode}, no message"]
    oom = returncode in (-9, 137) or "OutOfMemoryError" in stderr or "out of memory" in stderr.lower()
    return {"error": last, "returncode": returncode, "out_of_memory": oom}


def run_isolated(script: str, args: dict) -> dict:
    """Run ``script --case JSON`` in a fresh interpreter so memory numbers do not mix."""
    out = subprocess.run([sys.executable, script, "--case", json.dumps(args)], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if out.returncode != 0:
        return {**args, **failure(out.returncode, out.stderr)}
    return json.loads(out.stdout.strip().splitlines()[-1])
