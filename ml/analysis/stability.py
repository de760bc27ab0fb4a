"""Which clusters are real: a clustering's stability under new seeds and bootstrap resamples.

Each repeat draws a bootstrap sample of the points (n draws with replacement; the distinct points
drawn, about 63 % of them, are clustered: a duplicated point would only weigh more in density-based
methods), and reruns the same method with the same resolved parameters (k, eps, ... as the original
clustering used them) and a new seed, on the same space (the embedding or the projection the
clustering was computed on). Then:

- `mean_ari`: the mean adjusted Rand index over every pair of repeats, on the points both samples drew.
- per point: of the repeats that drew it, the fraction in which it landed with its consensus cluster.
  The consensus is the original clustering. Each repeat's clusters are matched one-to-one to the
  original's by the Hungarian assignment maximising the overlap (scipy's linear_sum_assignment on
  the contingency table, noise left out); a point lands with its consensus cluster when its repeat
  cluster is matched to its original cluster, or when it is noise in both. A point no repeat drew
  (probability 0.37^repeats) gets its cluster's mean.
- `per_cluster`: the mean point stability of each original cluster (noise as -1).

Stored as `clusterings/<id>/stability.npy` (float32 N, in [0, 1]) and `stability.json`.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from ml import artifacts
from ml.analysis.clustering import make_clustering
from ml.progress import ProgressCallback, report

NOISE = -1
MIN_REPEATS, MAX_REPEATS, DEFAULT_REPEATS = 2, 100, 10
STABILITY_FILE = "stability.npy"
STABILITY_META = "stability.json"


def bootstrap_sample(n: int, rng: np.random.Generator) -> np.ndarray:
    """The distinct indices (sorted, int64) of n draws with replacement from range(n)."""
    return np.unique(rng.integers(0, n, size=n))


def match_to_consensus(consensus: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """`labels` (M,) renamed to the consensus cluster each is matched to (one-to-one, by the largest
    total overlap with `consensus` (M,)); noise stays -1 and an unmatched cluster becomes -2."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics.cluster import contingency_matrix

    consensus_ids, own_ids = np.unique(consensus), np.unique(labels)
    table = contingency_matrix(consensus, labels)
    rows_kept, cols_kept = consensus_ids != NOISE, own_ids != NOISE
    renamed = np.full(len(labels), -2, dtype=np.int64)
    renamed[labels == NOISE] = NOISE
    if rows_kept.any() and cols_kept.any():
        rows, cols = linear_sum_assignment(table[np.ix_(rows_kept, cols_kept)], maximize=True)
        for target, own in zip(consensus_ids[rows_kept][rows], own_ids[cols_kept][cols]):
            renamed[labels == own] = target
    return renamed


def rerun_params(method: str, resolved: dict[str, Any]) -> dict[str, Any]:
    """The parameters to rerun `method` with: the clustering's resolved values (k, eps, ... as it
    used them, so a repeat does not choose them again) without the notes the method adds (e.g. k_source)."""
    known = {spec.name for spec in make_clustering(method).params.specs}
    return {name: value for name, value in resolved.items() if name in known and value is not None}


def cluster_stability(
    points: np.ndarray,
    consensus: np.ndarray,
    method: str,
    params: dict[str, Any],
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Rerun `method` with `params` on `repeats` bootstrap samples of `points` (N × d).

    `consensus` (N,) is the original clustering's labels. Returns {"point_stability": float32 (N,),
    "mean_ari": float, "repeats": int, "per_cluster": {"<label>": float}}. Raises ValueError for
    repeats outside 2..100 and ml.progress.Stopped when `progress` asks to stop.
    """
    from sklearn.metrics import adjusted_rand_score

    if not MIN_REPEATS <= repeats <= MAX_REPEATS:
        raise ValueError(f"repeats must be between {MIN_REPEATS} and {MAX_REPEATS}, got {repeats}")
    points = np.ascontiguousarray(points, dtype=np.float32)
    consensus = np.asarray(consensus, dtype=np.int64)
    params = rerun_params(method, params)
    n = len(points)
    hits, drawn = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    samples: list[tuple[np.ndarray, np.ndarray]] = []
    for repeat in range(repeats):
        rng = np.random.default_rng([seed, repeat])
        sample = bootstrap_sample(n, rng)
        labels = make_clustering(method, params, random_state=seed + 1 + repeat).fit(points[sample]).labels_
        matched = match_to_consensus(consensus[sample], labels)
        hits[sample] += matched == consensus[sample]
        drawn[sample] += 1
        samples.append((sample, labels))
        report(progress, repeat + 1, repeats, {"fraction": (repeat + 1) / (repeats + 1)})
    aris = []
    for (first, first_labels), (second, second_labels) in combinations(samples, 2):
        common, in_first, in_second = np.intersect1d(first, second, assume_unique=True, return_indices=True)
        aris.append(adjusted_rand_score(first_labels[in_first], second_labels[in_second]))
    stability = np.divide(hits, drawn, out=np.full(n, np.nan), where=drawn > 0)
    per_cluster: dict[str, float] = {}
    for label in np.unique(consensus):
        members = consensus == label
        mean = float(np.nanmean(stability[members])) if np.isfinite(stability[members]).any() else 0.0
        stability[members & ~np.isfinite(stability)] = mean
        per_cluster[str(int(label))] = mean
    report(progress, repeats + 1, repeats, {"fraction": 1.0})
    return {"point_stability": stability.astype(np.float32), "mean_ari": float(np.mean(aris)), "repeats": repeats,
            "per_cluster": per_cluster}


def run_stability(run_dir: Path, clustering_id: str, repeats: int = DEFAULT_REPEATS, seed: int = 0,
                  progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Stability of a finished clustering of the run, on the space it was computed on; writes
    clusterings/<id>/stability.npy and stability.json (last). Returns the json:
    {"mean_ari", "repeats", "per_cluster", "seconds", "created"}. Raises ParamError for an unknown clustering."""
    from ml.analysis.neighbors import load_embedding
    from ml.analysis.run_analyses import EMBEDDING, load_clustering, load_projection

    run_dir = Path(run_dir)
    consensus = load_clustering(run_dir, clustering_id)
    folder = run_dir / artifacts.CLUSTERINGS_DIR / clustering_id
    meta = artifacts.read_json(folder / "meta.json")
    on = meta.get("on", EMBEDDING)
    points = load_embedding(run_dir) if on == EMBEDDING else load_projection(run_dir, on)
    started = time.perf_counter()
    result = cluster_stability(points, consensus, meta["method"], meta["params"], repeats, seed, progress)
    summary = {"mean_ari": result["mean_ari"], "repeats": result["repeats"], "per_cluster": result["per_cluster"],
               "seconds": round(time.perf_counter() - started, 3),
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    artifacts.write_npy(folder / STABILITY_FILE, result["point_stability"])
    artifacts.write_json(folder / STABILITY_META, summary)
    return summary
