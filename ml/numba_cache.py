"""umap-learn's compiled code kept on disk, so that no process compiles it twice.

pynndescent marks its numba functions `cache=True`; umap-learn marks almost none, so every new
process used to compile them again on its first fit (≈6 s on 2 cores for the 1,797 digits, with
pynndescent's cache already warm; ≈30 s more when pynndescent's is cold too). `import_umap` turns
numba's on-disk cache on for every numba function of umap-learn and pynndescent before anything
is compiled, so code compiled once — by `make install` (`python -m ml.numba_cache`) or by the
server's warm-up process at start — is loaded by every later process.

`warm_up` also compiles fast_hdbscan (HDBSCAN from 10,000 points), whose functions are marked
`cache=True` already but take ≈1 minute to compile on a new machine.

Where the cache lives is numba's choice: `NUMBA_CACHE_DIR` when set, else `__pycache__` beside
the installed package when writable, else the user's cache folder (~/.cache/numba). numba keys
each entry by the source file's modification time and size and by the CPU, so an upgraded
umap-learn or another machine recompiles instead of loading stale code.
"""
from __future__ import annotations

import functools
import sys
import time
from types import ModuleType

_PACKAGES = ("umap", "pynndescent")


@functools.cache
def import_umap() -> ModuleType:
    """`import umap`, with numba's disk cache on for all of umap-learn's and pynndescent's functions
    (turned on once per process: every fit calls this)."""
    import umap

    enable_caching()
    return umap


def enable_caching() -> int:
    """Turn the on-disk cache on for every loaded numba function of umap and pynndescent that lacks it.

    Returns how many functions it turned on. Functions already compiled in this process stay as they
    are (their next signature is cached); a function numba cannot cache falls back to compiling.
    """
    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    enabled = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in _PACKAGES:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, CPUDispatcher) and isinstance(value._cache, NullCache):
                value.enable_caching()
                enabled += 1
    return enabled


def warm_up(hdbscan: bool = True) -> float:
    """Compile (or load from the cache) the code of a UMAP fit on the shared kNN graph; returns seconds.

    With `hdbscan`, also fast_hdbscan's (the HDBSCAN path from 10,000 points): its functions are
    `cache=True`, but the first fit on a new machine compiles them for ≈1 minute.
    """
    import numpy as np

    from ml.analysis.neighbors import compute_knn
    from ml.analysis.projection import make_projection

    started = time.perf_counter()
    x = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    make_projection("umap", {"n_epochs": 10}).fit(x, compute_knn(x, 30))
    if hdbscan:
        import fast_hdbscan

        # The call ml.analysis.clustering makes (float64 input), so the same specialisations are compiled.
        fast_hdbscan.HDBSCAN(min_cluster_size=10, min_samples=4).fit_predict(x.astype(np.float64))
    return time.perf_counter() - started


if __name__ == "__main__":
    print(f"numba code for UMAP and HDBSCAN compiled and cached in {warm_up():.1f} s")
