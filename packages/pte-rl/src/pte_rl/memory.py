"""Process-level memory settings for long training runs on CPU."""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def limit_heap_fragmentation(threshold: int = 128 * 1024) -> bool:
    """Serve allocations above ``threshold`` bytes with mmap and trim freed heap eagerly (glibc).

    A training step allocates many large temporaries of changing sizes (chunks, caches, logits);
    glibc's default adaptive thresholds keep the freed memory resident, which on CPU inflates peak
    RSS by a gigabyte or more. Same effect as MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_.
    Returns False where glibc is not available (nothing changes).
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False
