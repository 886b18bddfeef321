"""Process-level settings for CPU training: :func:`configure` applies both below (called by ``mmrec.run.train``
and the benchmarks, first thing, before any parallel work starts the thread pool).

Denormal floats. Gradients that underflow (e.g. through LGMRec's Gumbel-softmax hyperedge logits) reach
values below 1.2e-38, which x86 CPUs handle ~100x slower: on the Baby benchmark one ``X_mᵀ G`` weight-gradient
product took 233 ms instead of 26 ms. :func:`flush_denormals` sets flush-to-zero / denormals-are-zero
(``torch.set_flush_denormal``); worker threads inherit it only when it is set before they are created. The
numbers it changes are below 1.2e-38 in magnitude. Opt out with ``MMREC_FLUSH_DENORMALS=0``.

Freed memory.

A training step allocates and frees the same large buffers every time (gradients of fine-tuned feature tables,
[N, d] propagation outputs, logits blocks). glibc serves blocks above its mmap threshold with a fresh ``mmap``
and returns them with ``munmap``, so every step pays the kernel's page faults and zeroing again: on the Baby
benchmark a 115 MB ``zeros`` took 33 ms that way against 10 ms from reused heap memory, and a fine-tuned
table's gradient scatter 47 ms against 17 ms. :func:`keep_freed_memory` raises the mmap and trim thresholds
(``mallopt``) so freed memory stays in the heap for reuse — the effect of ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` in the environment. Resident memory then stays near its peak instead of shrinking
between steps. Opt out with ``MMREC_KEEP_FREED_MEMORY=0``; elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import torch

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_applied = False


def configure() -> dict[str, bool]:
    """Apply the CPU settings of this module; returns which are in effect."""
    return {"keep_freed_memory": keep_freed_memory(), "flush_denormals": flush_denormals()}


def flush_denormals() -> bool:
    """Treat denormal floats as zero (x86 with SSE3; elsewhere nothing); True when in effect."""
    if os.environ.get("MMREC_FLUSH_DENORMALS", "1") == "0":
        return False
    return bool(torch.set_flush_denormal(True))


def keep_freed_memory() -> bool:
    """Keep freed memory for reuse (glibc ``mallopt``); True when the settings are in effect."""
    global _applied
    if _applied:
        return True
    if os.environ.get("MMREC_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without mallopt)
        return False
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1))
    return _applied
