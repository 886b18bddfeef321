"""Process-level settings: :func:`configure` (called by ``mmrec.run.train`` and the benchmarks, first thing,
before any parallel work starts the thread pool or CUDA starts) applies the two CPU settings below when training
runs on the CPU, and the CUDA determinism settings when it runs on a GPU.

CUDA determinism (PyTorch's reproducibility notes). cuBLAS reuses a workspace whose split between streams makes
matrix products run-to-run nondeterministic unless ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` is set *before* the first
cuBLAS handle exists; Lightning sets it when the Trainer is built, which is too late once an encoder has run on
the GPU, so :func:`cuda_determinism` sets it first (an existing value is kept). The Trainer then calls
``torch.use_deterministic_algorithms`` (``trainer.deterministic``: ``true`` fails on an op without a
deterministic CUDA kernel, ``warn`` runs it and PyTorch warns once per op, ``false`` neither).

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
import warnings

import torch

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_applied = False


CUBLAS_DETERMINISTIC = ":4096:8"


def resolve_accelerator(accelerator: str | None) -> str:
    """``cpu`` or ``cuda`` for a Lightning ``accelerator`` (``auto`` and ``gpu`` are CUDA when it is available)."""
    name = str(accelerator or "auto").lower()
    if name == "cpu":
        return "cpu"
    if name in ("cuda", "gpu", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def configure(accelerator: str | None = "cpu", deterministic: bool | str | None = None) -> dict[str, bool]:
    """Apply this module's settings for training on ``accelerator`` (a Lightning name or a device type):
    the CPU settings on the CPU only, the CUDA determinism settings on CUDA; returns which are in effect."""
    device = resolve_accelerator(accelerator)
    if device == "cpu":
        return {"keep_freed_memory": keep_freed_memory(), "flush_denormals": flush_denormals()}
    applied = {"keep_freed_memory": False, "flush_denormals": False}
    if device == "cuda":
        applied["cublas_workspace_config"] = cuda_determinism(deterministic)
    return applied


def cuda_determinism(deterministic: bool | str | None) -> bool:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` when ``deterministic`` is ``True`` or ``"warn"`` (before CUDA is used);
    True when the deterministic cuBLAS workspace is in effect."""
    if not deterministic:
        return False
    current = os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
    if current not in (":4096:8", ":16:8"):
        warnings.warn(
            f"CUBLAS_WORKSPACE_CONFIG={current!r} is not one of ':4096:8' / ':16:8': matrix products on "
            "CUDA may differ from run to run",
            stacklevel=2,
        )
        return False
    if deterministic == "warn":
        warnings.warn(
            "trainer.deterministic=warn on CUDA: operations without a deterministic CUDA kernel still "
            "run (PyTorch warns once for each); the same seed may then give slightly different results "
            "from run to run. trainer.deterministic=true makes such an operation an error instead.",
            stacklevel=2,
        )
    return True


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
