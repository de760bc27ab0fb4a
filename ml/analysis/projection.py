"""Registered projections of an embedding to a few dimensions: pca, tsne (openTSNE), umap (umap-learn).

Each projection is a small estimator: `__init__` stores the raw parameters, `fit(X, knn, progress)`
validates them against the class's `params` schema, stores the values actually used in `params_`
and the float32 N × n_components result in `embedding_`. A precomputed kNN graph (ml.analysis.neighbors) is
reused by t-SNE's affinities and UMAP's fuzzy graph when it is wide enough.

Repeatability (same input, same seed):
- pca: bit-for-bit (randomized SVD seeded).
- tsne: bit-for-bit for the Barnes-Hut path and the FFT path on the same machine and thread
  count (openTSNE's gradients are deterministic sums; PCA initialisation is seeded).
- umap: umap-learn only runs its layout deterministically single-threaded (it forces n_jobs=1 when
  given `random_state`). By default we run it on all cores instead, seeded through numpy's global
  generator (spectral initialisation and the layout's random state are then fixed); the parallel
  layout's lock-free ("hogwild") updates still make the last digits differ between runs, so
  repeated runs agree within a bound (trustworthiness within 0.01), not bit-for-bit. Set
  `deterministic=true` to get umap-learn's bit-for-bit single-threaded mode.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from ml.analysis.neighbors import KNN_K, KnnGraph
from ml.params import ParamError, ParamSchema, ParamSpec
from ml.progress import ProgressCallback, Stopped, report


class Projection(ABC):
    """Base class: subclasses declare `name` and `params` and implement `_fit`."""

    name: ClassVar[str]
    label: ClassVar[str]  # for forms and tables
    params: ClassVar[ParamSchema]

    def __init__(self, random_state: int = 0, **params: Any) -> None:
        self.random_state = random_state
        self.given_params = params

    def needs_knn(self, n_points: int) -> bool:
        """Whether `fit` would use the shared Euclidean kNN graph for these parameters."""
        return False

    def fit(self, X: np.ndarray, knn: KnnGraph | None = None, progress: ProgressCallback | None = None) -> Projection:
        """Project X (N × d). Sets `params_` (parameters used) and `embedding_` (float32 N × n_components)."""
        self.params_ = self.params.validate(self.given_params)
        x = np.ascontiguousarray(X, dtype=np.float32)
        report(progress, 0, 0, {"fraction": 0.0})
        coords = self._fit(x, knn, progress)
        self.embedding_ = np.ascontiguousarray(coords, dtype=np.float32)
        report(progress, 1, 1, {"fraction": 1.0})
        return self

    def fit_transform(self, X: np.ndarray, knn: KnnGraph | None = None, progress: ProgressCallback | None = None) -> np.ndarray:
        return self.fit(X, knn, progress).embedding_

    @abstractmethod
    def _fit(self, x: np.ndarray, knn: KnnGraph | None, progress: ProgressCallback | None) -> np.ndarray: ...


PROJECTIONS: dict[str, type[Projection]] = {}


def register(cls: type[Projection]) -> type[Projection]:
    PROJECTIONS[cls.name] = cls
    return cls


def make_projection(method: str, params: dict[str, Any] | None = None, random_state: int = 0) -> Projection:
    """The registered projection `method`; ParamError names the known ones for an unknown method."""
    if method not in PROJECTIONS:
        raise ParamError(f"unknown projection method {method!r}; allowed: {', '.join(PROJECTIONS)}")
    return PROJECTIONS[method](random_state=random_state, **(params or {}))


def _n_components(maximum: int) -> ParamSpec:
    return ParamSpec("n_components", int, 2, "dimensions of the map (2 to draw; more to cluster on)", minimum=1, maximum=maximum)


@register
class PCAProjection(Projection):
    name = "pca"
    label = "PCA"
    params = ParamSchema((_n_components(100),))

    def _fit(self, x: np.ndarray, knn: KnnGraph | None, progress: ProgressCallback | None) -> np.ndarray:
        from sklearn.decomposition import PCA

        n_components = min(self.params_["n_components"], *x.shape)
        return PCA(n_components=n_components, random_state=self.random_state).fit_transform(x)


@register
class TSNEProjection(Projection):
    """openTSNE with affinities from the shared kNN graph when 3 × perplexity ≤ its width."""

    name = "tsne"
    label = "t-SNE (openTSNE)"
    params = ParamSchema(
        (
            _n_components(3),
            ParamSpec("perplexity", float, 30.0, "effective number of neighbours", minimum=1.0, maximum=100.0),
            ParamSpec("learning_rate", float, None, "step size; empty = auto (N / exaggeration)", minimum=0.0, exclusive_minimum=True),
            ParamSpec("n_iter", int, 500, "iterations after early exaggeration", minimum=1, maximum=10_000),
            ParamSpec("early_exaggeration_iter", int, 250, "iterations of early exaggeration", minimum=0, maximum=5_000),
            ParamSpec("negative_gradient_method", str, "auto", "fft (fast for large N, 1-2 dims) or bh (Barnes-Hut); auto picks bh below 10,000 points", choices=("auto", "fft", "bh")),
            ParamSpec("initialization", str, "pca", "starting layout", choices=("pca", "spectral", "random")),
        )
    )
    # openTSNE's own rule: Barnes-Hut is faster below about 10,000 points, FFT above.
    FFT_MIN_POINTS = 10_000
    # Below this many points openTSNE's threads mostly wait on each other (measured 2-3× slower than
    # one thread for 400-1,800 points on a busy 2-core machine), so small inputs use one thread.
    ONE_THREAD_BELOW = 5_000
    CALLBACK_EVERY = 25

    def needs_knn(self, n_points: int) -> bool:
        return self._neighbors_needed(self.params.validate(self.given_params)["perplexity"], n_points) <= KNN_K

    @staticmethod
    def _neighbors_needed(perplexity: float, n_points: int) -> int:
        return min(n_points - 1, math.ceil(3 * perplexity))

    def _fit(self, x: np.ndarray, knn: KnnGraph | None, progress: ProgressCallback | None) -> np.ndarray:
        from openTSNE import TSNE, affinity, initialization, nearest_neighbors

        p = self.params_
        n = x.shape[0]
        n_jobs = 1 if n < self.ONE_THREAD_BELOW else -1
        method = p["negative_gradient_method"]
        if method == "auto":
            method = "fft" if n >= self.FFT_MIN_POINTS and p["n_components"] <= 2 else "bh"
        if method == "fft" and p["n_components"] > 2:
            raise ParamError("negative_gradient_method fft supports n_components 1 or 2; use bh for 3")
        p["negative_gradient_method"] = method
        # None → openTSNE's "auto": N / exaggeration in each phase (Belkina et al. 2019).
        learning_rate: float | str = p["learning_rate"] or "auto"
        p["learning_rate"] = learning_rate
        needed = self._neighbors_needed(p["perplexity"], n)
        perplexity = min(p["perplexity"], needed / 3.0)
        p["perplexity"] = perplexity
        if knn is not None and knn.k >= needed:
            index = nearest_neighbors.PrecomputedNeighbors(knn.indices[:, :needed], knn.distances[:, :needed].astype(np.float64))
            affinities = affinity.PerplexityBasedNN(perplexity=perplexity, knn_index=index, n_jobs=n_jobs, random_state=self.random_state)
        else:
            affinities = affinity.PerplexityBasedNN(x, perplexity=perplexity, n_jobs=n_jobs, random_state=self.random_state)
        total = p["early_exaggeration_iter"] + p["n_iter"]
        done = {"iterations": 0}

        def callback(iteration: int, error: float, embedding: np.ndarray) -> bool:
            done["iterations"] += self.CALLBACK_EVERY
            report(progress, done["iterations"], total, {"fraction": min(done["iterations"] / total, 1.0), "kl_divergence": float(error)})
            return False

        tsne = TSNE(
            n_components=p["n_components"],
            learning_rate=learning_rate,
            n_iter=p["n_iter"],
            early_exaggeration_iter=p["early_exaggeration_iter"],
            negative_gradient_method=method,
            initialization=p["initialization"],
            n_jobs=n_jobs,
            random_state=self.random_state,
            callbacks=callback if progress is not None else None,
            callbacks_every_iters=self.CALLBACK_EVERY,
        )
        init: np.ndarray | str = "random"
        if p["initialization"] == "pca":
            init = initialization.pca(x, n_components=p["n_components"], random_state=self.random_state)
        elif p["initialization"] == "spectral":
            init = initialization.spectral(affinities.P, n_components=p["n_components"], random_state=self.random_state)
        # A Stopped raised in the callback propagates: openTSNE only swallows its own interrupt.
        return np.asarray(tsne.fit(affinities=affinities, initialization=init))


class _EpochStream:
    """A file for tqdm that turns umap-learn's per-epoch progress bar into progress callbacks.

    umap-learn exposes its layout loop only through `tqdm_kwds`; with `bar_format="{n} {total}"`
    every refresh writes "epoch total", which is parsed here. Stopped raised from `write` leaves
    the loop (tqdm does not catch it); later writes (tqdm closing the bar) are ignored.
    """

    def __init__(self, progress: ProgressCallback) -> None:
        self.progress = progress
        self.stopped = False

    def write(self, text: str) -> None:
        parts = text.strip().split()
        if self.stopped or len(parts) != 2 or not all(part.isdigit() for part in parts):
            return
        epoch, total = int(parts[0]), int(parts[1])
        try:
            report(self.progress, epoch, total, {"fraction": epoch / total if total else 1.0})
        except Stopped:
            self.stopped = True
            raise

    def flush(self) -> None:
        pass


# umap-learn runs 500 epochs below 10,000 points and 200 above. At every size measured below
# 10,000 (digits, a digits embedding, 5,000 Fashion-MNIST images) 200 epochs keep trustworthiness
# within 0.0011 of 500 for 2.5-2.8× less time (BENCHMARKS.md, bench/bench_umap_epochs.py).
UMAP_EPOCHS = 200


@register
class UMAPProjection(Projection):
    """umap-learn, with the fuzzy graph built from the shared kNN graph for the Euclidean metric."""

    name = "umap"
    label = "UMAP"
    params = ParamSchema(
        (
            _n_components(10),
            ParamSpec("n_neighbors", int, 15, "neighbourhood size: larger keeps more global structure", minimum=2, maximum=200),
            ParamSpec("min_dist", float, 0.1, "how tightly points may pack (0 = tight clusters)", minimum=0.0, maximum=1.0),
            ParamSpec("metric", str, "euclidean", "distance in the embedding", choices=("euclidean", "cosine", "manhattan", "correlation")),
            ParamSpec("n_epochs", int, None, f"layout epochs; empty = {UMAP_EPOCHS}", minimum=10, maximum=5_000),
            ParamSpec("deterministic", bool, False, "bit-for-bit repeatable but single-threaded (slower)"),
        )
    )

    def needs_knn(self, n_points: int) -> bool:
        p = self.params.validate(self.given_params)
        return p["metric"] == "euclidean" and min(p["n_neighbors"], n_points) - 1 <= KNN_K

    def _fit(self, x: np.ndarray, knn: KnnGraph | None, progress: ProgressCallback | None) -> np.ndarray:
        from ml.numba_cache import import_umap

        umap = import_umap()
        p = self.params_
        n = x.shape[0]
        p["n_neighbors"] = min(p["n_neighbors"], n - 1)
        p["n_epochs"] = p["n_epochs"] or UMAP_EPOCHS
        precomputed: tuple[Any, Any, Any] = (None, None, None)
        # UMAP's neighbour lists include the point itself, so n_neighbors - 1 graph neighbours are needed.
        if knn is not None and p["metric"] == "euclidean" and knn.k >= p["n_neighbors"] - 1:
            indices, distances = knn.first(p["n_neighbors"] - 1).with_self()
            precomputed = (indices, distances, None)
        tqdm_kwds: dict[str, Any] = {"disable": True}
        stream = None
        if progress is not None:
            stream = _EpochStream(progress)
            tqdm_kwds = {"disable": False, "file": stream, "bar_format": "{n} {total}", "mininterval": 0.0, "miniters": 1}
        reducer = umap.UMAP(
            n_components=p["n_components"],
            n_neighbors=p["n_neighbors"],
            min_dist=p["min_dist"],
            metric=p["metric"],
            n_epochs=p["n_epochs"],
            init="spectral",
            random_state=self.random_state if p["deterministic"] else None,
            n_jobs=1 if p["deterministic"] else -1,
            precomputed_knn=precomputed,
            tqdm_kwds=tqdm_kwds,
            verbose=False,
        )
        import warnings

        with warnings.catch_warnings(), _seeded_global_numpy(self.random_state):
            # The precomputed graph has no search index, so transform() is unavailable: expected.
            warnings.filterwarnings("ignore", message=".*knn_search_index.*")
            warnings.filterwarnings("ignore", message=".*n_jobs value.*")
            return reducer.fit_transform(x)


class _seeded_global_numpy:
    """Seed numpy's global generator for the duration of a block and restore its state after.

    umap-learn without `random_state` draws its spectral-initialisation noise and layout seed from
    the global generator; seeding it keeps the parallel path repeatable without forcing one thread.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        self.saved = np.random.get_state()
        np.random.seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        np.random.set_state(self.saved)
