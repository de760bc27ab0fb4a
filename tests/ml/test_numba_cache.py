"""UMAP's numba code is compiled once and loaded from numba's disk cache by every later process."""
from __future__ import annotations

import json
import subprocess
import sys

# One UMAP fit in a fresh process; prints, per numba function of umap-learn that ran, how often
# its code came from the disk cache and how often it was compiled.
FIT_AND_REPORT = """
import json, sys
import numpy as np
from numba.core.caching import NullCache
from numba.core.registry import CPUDispatcher
from ml.analysis.neighbors import compute_knn
from ml.numba_cache import import_umap
from ml.analysis.projection import make_projection

import_umap()
x = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
make_projection("umap", {"n_epochs": 10}).fit(x, compute_knn(x, 30))
report = {}
for name, module in list(sys.modules.items()):
    if module is not None and name.split(".")[0] == "umap":
        for attr, value in vars(module).items():
            if isinstance(value, CPUDispatcher):
                report[f"{name}.{attr}"] = {"cached": not isinstance(value._cache, NullCache),
                                            "hits": sum(value.stats.cache_hits.values()),
                                            "misses": sum(value.stats.cache_misses.values())}
print(json.dumps(report))
"""


def fit_in_a_new_process() -> dict[str, dict]:
    done = subprocess.run([sys.executable, "-c", FIT_AND_REPORT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_umap_function_has_the_disk_cache_on():
    report = fit_in_a_new_process()
    assert len(report) > 50  # umap-learn 0.5 has ~90 numba functions across its modules
    assert all(entry["cached"] for entry in report.values()), [name for name, e in report.items() if not e["cached"]]


def test_a_second_process_loads_the_layout_instead_of_compiling_it():
    fit_in_a_new_process()  # compiles what the cache lacks (nothing after `make install`)
    report = fit_in_a_new_process()
    epoch = report["umap.layouts._nb_optimize_layout_euclidean_single_epoch_parallel"]
    assert epoch["hits"] >= 1 and epoch["misses"] == 0
    for name in ("umap.umap_.smooth_knn_dist", "umap.umap_.compute_membership_strengths"):
        assert report[name]["hits"] >= 1 and report[name]["misses"] == 0, (name, report[name])
