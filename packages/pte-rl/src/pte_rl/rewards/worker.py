"""A reward worker process: ``python -m pte_rl.rewards.worker MODULE:FUNCTION FD`` (see pool.py)."""

import sys
from multiprocessing.connection import Connection

from .pool import serve

if __name__ == "__main__":
    serve(sys.argv[1], Connection(int(sys.argv[2])))
