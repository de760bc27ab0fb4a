"""Freed memory kept in the process while training, and handed back after (ml/cpu_memory.py)."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ml.cpu_memory import freed_memory_is_kept, freed_memory_kept
from ml.datasets import load_dataset
from ml.train_config import TrainConfig
from ml.training import train

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="only glibc's malloc has the thresholds")

PAGE = os.sysconf("SC_PAGE_SIZE")
BLOCK_FLOATS = 2 * 2**20  # 8 MiB: a large activation, below the kept mmap threshold
BLOCKS = 25  # 200 MiB in all: more free heap than glibc's adaptive trim threshold (at most 64 MiB) keeps
PAGES_TOUCHED = BLOCKS * BLOCK_FLOATS * 4 // PAGE


def resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def a_step() -> None:
    """Allocates 200 MiB in 8 MiB blocks, writes every page, frees them all."""
    blocks = [torch.empty(BLOCK_FLOATS).fill_(1.0) for _ in range(BLOCKS)]
    del blocks


def faults_of_a_step_after_three() -> int:
    """Page faults of a step that three steps came before (glibc settles its heap over the first two or three)."""
    for _ in range(3):
        a_step()
    faults = minor_faults()
    a_step()
    return minor_faults() - faults


# In a fresh process, whose heap no earlier test has left holes in (a step's blocks would fill them
# and be freed back into them, whatever the thresholds). glibc's default thresholds (128 KiB) are
# held fixed for the first measurement: left adaptive, they rise after the first free, and then a
# small allocation landing above the freed blocks (another thread's, at random) can keep the heap
# from being trimmed, so that in about one process of six the defaults faulted nothing.
FRESH_PROCESS = """
import json, sys
sys.path.insert(0, {root!r})
from tests.ml.test_cpu_memory import faults_of_a_step_after_three, resident_mib
from ml.cpu_memory import M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, _glibc, freed_memory_kept

_glibc().mallopt(M_MMAP_THRESHOLD, 128 * 1024)
_glibc().mallopt(M_TRIM_THRESHOLD, 128 * 1024)
glibc_defaults = faults_of_a_step_after_three()
before = resident_mib()
with freed_memory_kept() as applied:
    kept = faults_of_a_step_after_three()
    held = resident_mib() - before
print(json.dumps({{"applied": applied, "glibc_defaults": glibc_defaults, "kept": kept, "held": held, "after": resident_mib() - before}}))
"""


def test_freed_memory_stays_for_the_next_step_and_is_handed_back_after() -> None:
    script = FRESH_PROCESS.format(root=str(Path(__file__).resolve().parents[2]))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["applied"]
    assert seen["glibc_defaults"] > 0.5 * PAGES_TOUCHED  # every step faults its pages in again
    assert seen["kept"] < 0.05 * PAGES_TOUCHED  # it reuses the last step's pages
    assert seen["held"] > 150  # freed, yet still mapped while the block is open
    assert seen["after"] < 50  # handed back on leaving


def test_nested_blocks_keep_it_until_the_outermost_ends() -> None:
    assert not freed_memory_is_kept()
    with freed_memory_kept():
        with freed_memory_kept():
            assert freed_memory_is_kept()
        assert freed_memory_is_kept()
    assert not freed_memory_is_kept()


def test_training_keeps_freed_memory_while_it_runs_and_no_longer(tmp_path: Path) -> None:
    seen: list[bool] = []

    def progress(epoch: int, step: int, metrics: dict) -> bool:
        seen.append(freed_memory_is_kept())
        return False

    config = TrainConfig(dataset="digits", method="ae", epochs=1, batch_size=256, embedding_dim=8, lr=1e-3, seed=0, snapshots=0)
    train(config, load_dataset("digits"), tmp_path, progress)
    assert seen and all(seen)
    assert not freed_memory_is_kept()
