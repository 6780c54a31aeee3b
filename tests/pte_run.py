"""Run the `pte` command as a user does: a subprocess, offline (imported by the end-to-end tests)."""

import os
import subprocess
import sys


def run_pte(*args, timeout=600, check=True, env=None):
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    res = subprocess.run([sys.executable, "-m", "pte_cli", *args], capture_output=True, text=True,
                         timeout=timeout, env=full_env)
    if check and res.returncode != 0:
        raise AssertionError(f"pte {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res
