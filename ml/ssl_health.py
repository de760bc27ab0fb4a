"""Health of a self-supervised embedding while it trains: is it learning, or collapsing?

Measured once per epoch on a fixed small monitor set (`monitor_indices`), from three arrays the
training loop computes under no_grad: the embeddings of the clean images and of two augmented
views of each. All functions take float arrays (n, d) and work on the L2-normalised rows unless
said otherwise; numpy, scipy and scikit-learn only (no torch). scipy and scikit-learn are imported
where they are used, so the web server reads `CONTRASTIVE_METHODS` without loading them.

- alignment (Wang & Isola 2020): E ‖f(x) − f(y)‖² over positive pairs (two views of one image);
  0 when the views embed identically, at most 4. Lower is better, but 0 is also what collapse gives.
- uniformity (Wang & Isola 2020): log E exp(−t ‖f(x) − f(y)‖²) over pairs of different images,
  t = 2. 0 when every image embeds to one point; the lower bound for n points spread uniformly
  on the sphere S^{d−1} is `uniform_sphere_uniformity(d)` (→ −4 as d grows).
- embedding std: the per-dimension standard deviation of the normalised embeddings, averaged over
  the dimensions (SimSiam, Chen & He 2021): ≈ 1/√d for embeddings spread over the sphere, → 0 as
  they collapse onto one direction. `collapse_verdict` judges it relative to 1/√d.
- monitor kNN accuracy: leave-one-out kNN-5 (Euclidean, on the stored, unnormalised embedding like
  `ml.evaluation.knn_accuracy`) within the monitor set, when labels exist.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

# The methods whose training the monitor follows: they learn from two augmented views (`views`).
CONTRASTIVE_METHODS = ("simclr", "moco", "byol")

MONITOR_SIZE = 512  # images; three no-grad forward passes of this many per epoch
UNIFORMITY_T = 2.0
MONITOR_K = 5
# embedding std × √d: 1 when the embeddings spread evenly over the sphere, √(k/d) when they fill k
# of the d dimensions evenly. Below COLLAPSED they lie within a narrow cone (mean pairwise cosine
# ≳ 0.99: less than one dimension's worth); below PARTIAL they fill about two dimensions or fewer.
# Healthy runs on the digits measured 0.44–0.85 (SimCLR, MoCo, BYOL; encoder output, 32-d).
COLLAPSED_RATIO = 0.1
PARTIAL_RATIO = 0.25

Verdict = Literal["healthy", "partial", "collapsed", "diverged"]


def normalised(x: np.ndarray) -> np.ndarray:
    """Rows of x (n, d) scaled to unit L2 norm (a zero row stays zero); float64 (n, d)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def alignment(a: np.ndarray, b: np.ndarray, alpha: float = 2.0) -> float:
    """E ‖â_i − b̂_i‖^alpha over the rows of two views a, b (n, d) of the same n images; in [0, 2^alpha]."""
    if a.shape != b.shape:
        raise ValueError(f"the two views must have the same shape, got {a.shape} and {b.shape}")
    return float(np.mean(np.linalg.norm(normalised(a) - normalised(b), axis=1) ** alpha))


def uniformity(x: np.ndarray, t: float = UNIFORMITY_T) -> float:
    """log of the mean of exp(−t ‖x̂_i − x̂_j‖²) over the pairs i < j of the rows of x (n ≥ 2, d); ≤ 0."""
    from scipy.special import logsumexp

    if len(x) < 2:
        raise ValueError("uniformity needs at least two embeddings")
    unit = normalised(x)
    # ‖x̂_i − x̂_j‖² = 2 − 2 x̂_i·x̂_j for unit rows; clip the rounding below 0.
    squared = np.clip(2.0 - 2.0 * (unit @ unit.T), 0.0, 4.0)
    upper = squared[np.triu_indices(len(unit), k=1)]
    return float(logsumexp(-t * upper) - math.log(len(upper)))


def embedding_std(x: np.ndarray) -> float:
    """The standard deviation over the rows of x̂ (n, d), averaged over the d dimensions."""
    return float(np.mean(np.std(normalised(x), axis=0)))


def uniform_sphere_std(dim: int) -> float:
    """embedding_std of points spread uniformly on S^{d−1}: each coordinate has variance exactly 1/d."""
    return 1.0 / math.sqrt(dim)


def uniform_sphere_uniformity(dim: int, t: float = UNIFORMITY_T) -> float:
    """uniformity of points drawn uniformly on S^{d−1}, in closed form.

    For independent uniform x, y on the sphere, u = x·y has the moment generating function
    E e^{su} = Γ(d/2) (s/2)^{1−d/2} I_{d/2−1}(s) = ₀F₁(; d/2; s²/4), and ‖x − y‖² = 2 − 2u, so
    log E e^{−t‖x−y‖²} = −2t + log ₀F₁(; d/2; t²). (d = 3: −2t + log(sinh(2t) / 2t).)
    """
    from scipy.special import hyp0f1

    return float(-2.0 * t + math.log(hyp0f1(dim / 2.0, t * t)))


def monitor_knn_accuracy(x: np.ndarray, labels: np.ndarray, k: int = MONITOR_K) -> float:
    """Leave-one-out kNN-k accuracy (Euclidean, majority vote, ties to the smaller label) within x (n, d)."""
    from sklearn.neighbors import NearestNeighbors

    labels = np.asarray(labels)
    k = min(k, len(x) - 1)
    if k < 1:
        raise ValueError("the monitor kNN needs at least two embeddings")
    # kneighbors() without a query leaves each point out of its own neighbours.
    neighbours = NearestNeighbors(n_neighbors=k).fit(np.asarray(x, dtype=np.float64)).kneighbors(return_distance=False)
    _, codes = np.unique(labels, return_inverse=True)
    votes = np.zeros((len(x), codes.max() + 1), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(len(x)), k), codes[neighbours].ravel()), 1)
    return float(np.mean(votes.argmax(axis=1) == codes))


def collapse_verdict(std: float, dim: int) -> Verdict:
    """`healthy`, `partial` (the embeddings fill few dimensions) or `collapsed`, from embedding_std and d."""
    ratio = std * math.sqrt(dim)
    if ratio < COLLAPSED_RATIO:
        return "collapsed"
    return "partial" if ratio < PARTIAL_RATIO else "healthy"


def monitor_indices(n_images: int, candidates: np.ndarray, seed: int, size: int = MONITOR_SIZE) -> np.ndarray:
    """The fixed monitor set: `size` of `candidates` (indices into the dataset), drawn with `seed`, sorted."""
    candidates = np.asarray(candidates, dtype=np.int64)
    count = min(size, len(candidates))
    chosen = np.random.default_rng([seed, n_images, 0x55]).choice(len(candidates), size=count, replace=False)
    return np.sort(candidates[chosen])


def health_row(clean: np.ndarray, view_a: np.ndarray, view_b: np.ndarray, labels: np.ndarray | None) -> dict[str, Any]:
    """One epoch's health from the monitor set's embeddings (n, d): clean images and two views of each.

    Returns {alignment, uniformity, embedding_std, embedding_std_ratio (std × √d), verdict,
    monitor_knn_accuracy (None without labels)}; all floats are plain Python floats. Non-finite
    embeddings (the training diverged) give the verdict `diverged` and None for every value.
    """
    if not all(np.isfinite(part).all() for part in (clean, view_a, view_b)):
        return {"alignment": None, "uniformity": None, "embedding_std": None, "embedding_std_ratio": None,
                "verdict": "diverged", "monitor_knn_accuracy": None}
    dim = clean.shape[1]
    std = embedding_std(clean)
    return {
        "alignment": alignment(view_a, view_b),
        "uniformity": uniformity(clean),
        "embedding_std": std,
        "embedding_std_ratio": std * math.sqrt(dim),
        "verdict": collapse_verdict(std, dim),
        "monitor_knn_accuracy": monitor_knn_accuracy(clean, labels) if labels is not None else None,
    }
