"""Keep a training process's freed memory for its next step, instead of handing it back to the system.

Every training step allocates and frees the same large tensors (a batch's activations, its logits:
megabytes each). glibc's malloc serves blocks above its mmap threshold with fresh `mmap`s and gives
them back on free, and trims the top of its heap once 128 KiB there are free, so the next step
touches new pages and the kernel faults each one in, zeroed: 10,286 page faults per MoCo step on
Fashion-MNIST, and on this virtual machine ~20 % of the step's time (moco 6,561 → 7,977 images/s
with the faults gone, fast rounds; `bench/bench_step.py --memory glibc,kept`). While
`freed_memory_kept` holds, blocks up to 32 MiB come from the heap and up to 1 GiB of free heap
stays mapped: the same step then takes 60 page faults. On leaving, the free memory is handed back (`malloc_trim`), so a
worker process does not hold a finished run's peak, and the thresholds stay where glibc's own
adaptive ones end once they have seen such blocks: 32 MiB for mmap, twice that for trimming.

Only glibc has these knobs; elsewhere (macOS, musl) this does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import platform
from typing import Iterator

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from glibc's malloc.h
KEPT_MMAP_THRESHOLD = 32 * 2**20  # the largest glibc accepts on 64-bit systems (half its heap size)
KEPT_TRIM_THRESHOLD = 2**30
AFTER_TRIM_THRESHOLD = 2 * KEPT_MMAP_THRESHOLD  # where glibc's adaptive trim threshold ends, twice the mmap one


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_depth = 0  # how many freed_memory_kept blocks are open: only the outermost sets and restores


def _set_thresholds(libc: ctypes.CDLL, mmap_threshold: int, trim_threshold: int) -> bool:
    return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim_threshold))


def freed_memory_is_kept() -> bool:
    """Whether a `freed_memory_kept` block is open in this process (and glibc took its thresholds)."""
    return _depth > 0


@contextlib.contextmanager
def freed_memory_kept() -> Iterator[bool]:
    """Within the block, freed memory stays in the process for reuse; yields whether that applies here."""
    global _depth
    libc = _glibc()
    outermost = _depth == 0
    applied = libc is not None and (not outermost or _set_thresholds(libc, KEPT_MMAP_THRESHOLD, KEPT_TRIM_THRESHOLD))
    _depth += applied
    try:
        yield applied
    finally:
        _depth -= applied
        if applied and outermost:
            _set_thresholds(libc, KEPT_MMAP_THRESHOLD, AFTER_TRIM_THRESHOLD)
            libc.malloc_trim(0)
