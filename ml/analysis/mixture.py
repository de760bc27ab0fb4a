"""Gaussian mixture clustering, registered as `gmm` (scikit-learn's `GaussianMixture`).

N2D's last step (McConville et al. 2020): a mixture lets every cluster have its own shape and size,
which k-means assumes away (tests/ml/test_clustering.py: sheared groups k-means cuts across). On a
UMAP-10 map of a MoCo embedding of all 70k Fashion-MNIST images it is no better than k-means: ACC
0.59–0.70 over EM starts against k-means' 0.64 (BENCHMARKS.md, issue 9's clustering).

Registered from the bottom of `ml.analysis.clustering`, which imports this module.
"""
from __future__ import annotations

import warnings

import numpy as np

from ml.analysis.clustering import KClustering, n_clusters_spec, register
from ml.analysis.neighbors import KnnGraph
from ml.params import ParamError, ParamSchema, ParamSpec
from ml.progress import ProgressCallback

# A full (or tied) covariance has d² entries per component: above this many dimensions its fit is
# slow and its estimate poor, and a diagonal one, or a projection, is the better choice.
FULL_COVARIANCE_MAX_DIM = 128


@register
class GaussianMixtureClustering(KClustering):
    """Labels are each point's most probable component; EM starts from a k-means clustering (scikit-learn's default)."""

    name = "gmm"
    label = "Gaussian mixture"
    params = ParamSchema(
        (
            n_clusters_spec("components; empty = number of classes when labelled, else the lowest BIC for k = 2..10"),
            ParamSpec("covariance_type", str, "full", "each component's covariance", choices=("full", "tied", "diag", "spherical")),
            ParamSpec("n_init", int, 1, "restarts; the best likelihood is kept", minimum=1, maximum=20),
        )
    )
    chosen_by = "bic"
    none_chosen = "a Gaussian mixture needs at least 3 points to choose its number of components"

    def _check(self, x: np.ndarray) -> None:
        covariance, dims = self.params_["covariance_type"], x.shape[1]
        if covariance in ("full", "tied") and dims > FULL_COVARIANCE_MAX_DIM:
            raise ParamError(
                f"a {covariance} covariance is limited to {FULL_COVARIANCE_MAX_DIM} dimensions and this has {dims}; "
                "set covariance_type to diag, or set on to a projection (e.g. UMAP, n_components 10)"
            )

    def _fit(self, x: np.ndarray, knn: KnnGraph | None, n_classes: int | None, progress: ProgressCallback | None) -> np.ndarray:
        # float64 once for every k: EM's covariance updates in float32 lose definiteness on tight clusters.
        return super()._fit(x.astype(np.float64), knn, n_classes, progress)

    def _cluster(self, x: np.ndarray, k: int) -> np.ndarray:
        return self._mixture(x, k).predict(x)

    def _scored(self, x: np.ndarray, k: int) -> tuple[np.ndarray, float | None]:
        model = self._mixture(x, k)
        return model.predict(x), -float(model.bic(x))  # the lowest Bayesian information criterion wins

    def _mixture(self, x: np.ndarray, k: int):  # -> sklearn.mixture.GaussianMixture
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture

        model = GaussianMixture(n_components=min(k, x.shape[0]), covariance_type=self.params_["covariance_type"],
                                n_init=self.params_["n_init"], random_state=self.random_state)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # the last EM step is used either way
                return model.fit(x)
        except ValueError as error:  # a component collapsed onto too few distinct points
            raise ParamError(f"the Gaussian mixture could not be fitted with {k} components ({error}); "
                             "try fewer components or covariance_type diag") from None
