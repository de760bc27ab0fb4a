"""Benchmarks of the analysis part (projections, clusterings, the shared kNN graph); prints markdown.

    .venv/bin/python bench/bench_analysis.py digits        # UMAP + k-means on digits (pixels, PCA, trained AE)
    .venv/bin/python bench/bench_analysis.py fmnist        # best clustering pipeline on Fashion-MNIST (70k)
    .venv/bin/python bench/bench_analysis.py projections --n 10000   # ours vs plain library calls
    .venv/bin/python bench/bench_analysis.py whole --n 70000 --dim 32 # shared kNN graph vs separate calls
    .venv/bin/python bench/bench_analysis.py hdbscan --n 70000        # HDBSCAN on UMAP-10: ours vs scikit-learn
    .venv/bin/python bench/bench_analysis.py knn --n 70000 --dim 32   # the kNN graph: exact vs pynndescent

Every comparison runs its baseline in the same process, one after the other, because the machine's
cores may be shared; the 1-minute load average is printed with each table. Trustworthiness is
always ml.analysis.neighbors.trustworthiness (k = 10, the same fixed sample of 5,000 points) so that rows
are comparable.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml import artifacts  # noqa: E402
from ml.analysis.run_analyses import run_clustering, run_projection  # noqa: E402
from ml.analysis.cluster_metrics import agreement  # noqa: E402
from ml.analysis.neighbors import compute_knn, trustworthiness  # noqa: E402


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    print(f"\n### {title}\n")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(_cell(value) for value in row) + " |")
    sys.stdout.flush()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def timed(work: Callable[[], Any], what: str = "") -> tuple[Any, float]:
    """(result, wall seconds) of `work()`; logs `what` and its time to stderr as it goes."""
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    if what:
        print(f"[{time.strftime('%H:%M:%S')}] {what}: {seconds:.1f} s (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    return result, seconds


def make_run(folder: Path, embedding: np.ndarray, labels: np.ndarray) -> Path:
    artifacts.write_npy(folder / artifacts.EMBEDDINGS, embedding.astype(np.float32))
    artifacts.write_npy(folder / artifacts.LABELS, labels.astype(np.int64))
    return folder


def pca(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    from sklearn.decomposition import PCA

    return PCA(n_components=k, random_state=seed).fit_transform(x).astype(np.float32)


def fashion_pixels() -> tuple[np.ndarray, np.ndarray]:
    from ml.datasets import load_dataset

    dataset = load_dataset("fashion-mnist", download=False)
    return dataset.images.reshape(len(dataset.images), -1).astype(np.float32) / 255.0, dataset.labels


# ---------------------------------------------------------------- digits
def bench_digits(args: argparse.Namespace) -> None:
    from ml.datasets import load_dataset

    dataset = load_dataset("digits")
    pixels = dataset.images.reshape(len(dataset.images), -1).astype(np.float32) / 16.0
    embeddings = {"pixels (64-d)": pixels, "PCA-30 of pixels": pca(pixels, 30)}
    trained = train_digits_ae(dataset, args.seed)
    if trained is not None:
        embeddings[trained[0]] = trained[1]
    rows = []
    umap_params = {"n_neighbors": 15, "min_dist": 0.0}
    for name, embedding in embeddings.items():
        with tempfile.TemporaryDirectory() as folder:
            run_dir = make_run(Path(folder), embedding, dataset.labels)
            started = time.perf_counter()
            direct = run_clustering(run_dir, "kmeans", {"n_clusters": 10}, seed=args.seed)
            projection = run_projection(run_dir, "umap", umap_params, seed=args.seed)
            clustered = run_clustering(run_dir, "kmeans", {"n_clusters": 10}, on=projection["id"], seed=args.seed)
            seconds = time.perf_counter() - started
        rows.append([name, direct["ari"], clustered["ari"], clustered["nmi"], clustered["accuracy"], projection["trustworthiness"], seconds])
    table(
        "digits (1,797 images): k-means (k = 10) on the embedding vs on its UMAP map (n_neighbors 15, min_dist 0)",
        ["embedding", "k-means ARI", "UMAP + k-means ARI", "NMI", "accuracy", "UMAP trustworthiness", "seconds (all three)"],
        rows,
    )


def train_digits_ae(dataset: Any, seed: int) -> tuple[str, np.ndarray] | None:
    try:
        from ml.training import TrainConfig, train
    except ImportError:
        return None
    config = TrainConfig(dataset="digits", method="ae", epochs=60, embedding_dim=16, batch_size=64, lr=1e-3, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        _, seconds = timed(lambda: train(config, dataset, Path(folder)))
        embedding = np.load(Path(folder) / artifacts.EMBEDDINGS)
    return f"AE, 16-d, 60 epochs (trained in {seconds:.0f} s)", embedding


# ---------------------------------------------------------------- Fashion-MNIST clustering
def bench_fmnist(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    if args.embedding:
        # A trained run's embedding (ml.training's embeddings.npy, dataset order) instead of PCA-50.
        source = Path(args.embedding)
        embedding = np.load(source / artifacts.EMBEDDINGS)
        labels = np.load(source / artifacts.LABELS)
        config = artifacts.read_json(source / artifacts.CONFIG)
        trained = artifacts.read_json(source / artifacts.METRICS)
        name = f"{config['method']}-{config['embedding_dim']} ({config['epochs']} epochs, trained in {trained.get('train_seconds', 0):.0f} s)"
        if args.normalise:  # the geometry the contrastive losses see: Euclidean on unit vectors is monotone in cosine
            embedding = embedding / np.linalg.norm(embedding, axis=1, keepdims=True).clip(1e-12)
            name += ", L2-normalised"
        if args.concat:  # N2D's "concatenated features": each run's embedding scaled to a mean row norm of 1, side by side
            other = np.load(Path(args.concat) / artifacts.EMBEDDINGS)
            other_config = artifacts.read_json(Path(args.concat) / artifacts.CONFIG)
            embedding = np.hstack([block / np.linalg.norm(block, axis=1).mean() for block in (embedding, other)]).astype(np.float32)
            name += f" ⊕ {other_config['method']}-{other_config['embedding_dim']} (each scaled to mean norm 1)"
        load_seconds = time.perf_counter() - started
        title_embedding = f"embedding = {name}, loaded in {load_seconds:.0f} s; pipeline seconds exclude training"
    else:
        pixels, labels = fashion_pixels()
        embedding, pca_seconds = timed(lambda: pca(pixels, 50, args.seed), "PCA-50")
        load_seconds = time.perf_counter() - started
        name = "PCA-50"
        title_embedding = f"embedding = PCA-50 of pixels (load + PCA {load_seconds:.0f} s, of which PCA {pca_seconds:.0f} s)"
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        run_dir = make_run(Path(folder), embedding, labels)
        raw = run_clustering(run_dir, "kmeans", {"n_clusters": 10}, seed=args.seed)
        rows.append([f"{name} → k-means", raw["accuracy"], raw["nmi"], raw["ari"], load_seconds + raw["seconds"]])
        for seed in range(args.seed, args.seed + args.scan_seeds):
            scan = run_clustering(run_dir, "scan", {"n_clusters": 10}, seed=seed)
            print(f"scan, seed {seed}: {scan['seconds']:.0f} s", file=sys.stderr, flush=True)
            rows.append([f"{name} → scan (the product's defaults), seed {seed}", scan["accuracy"], scan["nmi"], scan["ari"], load_seconds + scan["seconds"]])
        projection = run_projection(run_dir, "umap", {"n_neighbors": args.n_neighbors, "min_dist": 0.0, "n_components": 10}, seed=args.seed)
        print(f"UMAP-10: {projection['seconds']:.0f} s", file=sys.stderr, flush=True)
        before = load_seconds + projection["seconds"]
        on_map = run_clustering(run_dir, "kmeans", {"n_clusters": 10}, on=projection["id"], seed=args.seed)
        rows.append([f"{name} → UMAP-10 (n_neighbors {args.n_neighbors}, min_dist 0) → k-means", on_map["accuracy"], on_map["nmi"], on_map["ari"], before + on_map["seconds"]])
        for seed in range(args.seed, args.seed + args.gmm_seeds):
            mixture = run_clustering(run_dir, "gmm", {"n_clusters": 10, "covariance_type": "full", "n_init": args.gmm_n_init}, on=projection["id"], seed=seed)
            rows.append([f"{name} → UMAP-10 → gmm (full covariance; N2D's last step; n_init {args.gmm_n_init}), seed {seed}", mixture["accuracy"], mixture["nmi"], mixture["ari"], before + mixture["seconds"]])
        if not args.skip_hdbscan:
            hdb = run_clustering(run_dir, "hdbscan", {}, on=projection["id"], seed=args.seed)
            rows.append([f"{name} → UMAP-10 → HDBSCAN (noise {hdb['noise_fraction']:.2f} counted as misses)", hdb["accuracy"], hdb["nmi"], hdb["ari"], before + hdb["seconds"]])
    table(
        f"Fashion-MNIST, all {len(labels):,} images, {title_embedding}; "
        "anchors: raw k-means 0.47/0.51, AE + k-means 0.61/0.64, N2D 0.672/0.684",
        ["pipeline", "accuracy", "NMI", "ARI", "wall seconds end to end"],
        rows,
    )


# ---------------------------------------------------------------- projections: ours vs library calls
def library_opentsne(x: np.ndarray, seed: int) -> np.ndarray:
    from openTSNE import TSNE

    return np.asarray(TSNE(n_jobs=-1, random_state=seed).fit(x))


def library_umap(x: np.ndarray, seed: int) -> np.ndarray:
    import umap

    # No random_state: umap-learn's parallel path, as in our default.
    return umap.UMAP().fit_transform(x)


def library_sklearn_tsne(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    return TSNE(random_state=seed).fit_transform(x)


def warm(args: argparse.Namespace) -> None:
    """Compile numba code first (as a long-lived worker does) so that no timed row pays for it.

    Ours (UMAP on the shared graph) and the libraries' own paths (umap-learn with its pynndescent
    search, openTSNE's default neighbours, fast_hdbscan) on 300 points, so that neither column pays.
    """
    import umap
    from openTSNE import TSNE

    from ml.numba_cache import warm_up

    x = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    timed(warm_up, "warm-up: ours (numba compilation or cache load, not in any row)")
    timed(lambda: umap.UMAP(n_epochs=10).fit_transform(x), "warm-up: umap-learn's own path (not in any row)")
    timed(lambda: TSNE(n_iter=10, early_exaggeration_iter=10, n_jobs=-1).fit(x), "warm-up: openTSNE's own path (not in any row)")
    if getattr(args, "pynndescent", False):
        from pynndescent import NNDescent

        timed(lambda: NNDescent(x, n_neighbors=16, random_state=0, n_jobs=-1, low_memory=True), "warm-up: pynndescent (not in any row)")
    if args.section == "hdbscan":
        import fast_hdbscan

        timed(lambda: fast_hdbscan.HDBSCAN(min_cluster_size=10, min_samples=4).fit_predict(x.astype(np.float64)), "warm-up: fast_hdbscan (not in any row)")


def bench_projections(args: argparse.Namespace) -> None:
    warm(args)
    pixels, labels = fashion_pixels()
    x = pca(pixels[: args.n], args.dim, args.seed)
    graph, knn_seconds = timed(lambda: compute_knn(x), "kNN graph")
    rows: list[list[Any]] = [["shared kNN graph (k = 90, exact, faiss)", knn_seconds, "", ""]]
    from ml.analysis.projection import make_projection

    for name, work in (
        ("ours: pca", lambda: make_projection("pca", {}, args.seed).fit_transform(x, graph)),
        ("ours: tsne (openTSNE on the shared graph)", lambda: make_projection("tsne", {}, args.seed).fit_transform(x, graph)),
        ("ours: umap (umap-learn on the shared graph)", lambda: make_projection("umap", {}, args.seed).fit_transform(x, graph)),
        ("openTSNE TSNE(n_jobs=-1).fit (own kNN)", lambda: library_opentsne(x, args.seed)),
        ("umap.UMAP().fit_transform (own kNN)", lambda: library_umap(x, args.seed)),
        ("sklearn.manifold.TSNE().fit_transform", lambda: library_sklearn_tsne(x, args.seed)),
    ):
        if name.startswith("sklearn") and args.n > args.sklearn_max:
            rows.append([name, "skipped (too slow above %d points)" % args.sklearn_max, "", ""])
            continue
        coords, seconds = timed(work, name)
        rows.append([name, seconds, trustworthiness(x, coords, graph), "+ kNN graph" if name.startswith("ours: tsne") or name.startswith("ours: umap") else ""])
    table(
        f"Projection of {args.n:,} Fashion-MNIST images (PCA-{args.dim} of pixels): seconds and trustworthiness (k = 10, 5,000-point sample)",
        ["method", "seconds", "trustworthiness", "note"],
        rows,
    )


# ---------------------------------------------------------------- the whole analysis of a run
def bench_whole(args: argparse.Namespace) -> None:
    from sklearn.manifold import trustworthiness as sklearn_trustworthiness
    from sklearn.neighbors import NearestNeighbors

    from ml.analysis.projection import make_projection

    warm(args)
    pixels, labels = fashion_pixels()
    x = pca(pixels[: args.n], args.dim, args.seed)
    sample = np.sort(np.random.default_rng(args.seed).choice(len(x), size=min(5_000, len(x)), replace=False))

    shared: dict[str, float] = {}
    graph, shared["kNN graph (k = 90)"] = timed(lambda: compute_knn(x), "shared: kNN graph (k = 90, exact, faiss)")
    tsne, shared["t-SNE"] = timed(lambda: make_projection("tsne", {}, args.seed).fit_transform(x, graph), "shared: t-SNE")
    umap_coords, shared["UMAP"] = timed(lambda: make_projection("umap", {}, args.seed).fit_transform(x, graph), "shared: UMAP")
    _, shared["neighbours of every point (k = 10)"] = timed(lambda: graph.first(10).indices.copy(), "shared: neighbours of every point (k = 10)")
    (tw_tsne, tw_umap), shared["trustworthiness of both maps"] = timed(
        lambda: (trustworthiness(x, tsne, graph), trustworthiness(x, umap_coords, graph)),
        "shared: trustworthiness of both maps",
    )

    separate: dict[str, float] = {}
    tsne_lib, separate["t-SNE"] = timed(lambda: library_opentsne(x, args.seed), "separate: t-SNE")
    umap_lib, separate["UMAP"] = timed(lambda: library_umap(x, args.seed), "separate: UMAP")
    _, separate["neighbours of every point (k = 10)"] = timed(
        lambda: NearestNeighbors(n_neighbors=11, n_jobs=-1).fit(x).kneighbors(x, return_distance=False),
        "separate: neighbours of every point (k = 10)",
    )
    (tw_tsne_lib, tw_umap_lib), separate["trustworthiness of both maps"] = timed(
        lambda: (
            sklearn_trustworthiness(x[sample], tsne_lib[sample], n_neighbors=10),
            sklearn_trustworthiness(x[sample], umap_lib[sample], n_neighbors=10),
        ),
        "separate: trustworthiness of both maps",
    )
    rows = []
    variant_rows: list[list[Any]] = []
    if args.tsne_variant:
        # Our t-SNE with other parameters on the same graph: in no total, for choosing defaults.
        variant = dict(item.split("=", 1) for item in args.tsne_variant)
        coords, seconds = timed(lambda: make_projection("tsne", variant, args.seed).fit_transform(x, graph), f"ours: t-SNE {variant}, in no total")
        variant_rows.append([f"(in no total) ours: t-SNE with {variant}: seconds / trustworthiness", seconds, trustworthiness(x, coords, graph)])
    if args.pynndescent:
        # What the shared graph cost before issue 10 (approximate, the call ml.analysis.neighbors made): in no total.
        from pynndescent import NNDescent

        timed(lambda: NNDescent(x, n_neighbors=91, random_state=args.seed, n_jobs=-1, low_memory=True).neighbor_graph, "pynndescent graph (k = 90), before issue 10, in no total")
    for step in ("kNN graph (k = 90)", "t-SNE", "UMAP", "neighbours of every point (k = 10)", "trustworthiness of both maps"):
        rows.append([step, shared.get(step, 0.0), separate.get(step, 0.0)])
    total_shared, total_separate = sum(shared.values()), sum(separate.values())
    rows.append(["**total**", total_shared, total_separate])
    rows.append(["**ratio shared / separate**", total_shared / total_separate, ""])
    rows.append(["trustworthiness t-SNE (ours, same sample of queries vs all points)", tw_tsne, trustworthiness(x, tsne_lib, graph)])
    rows.append(["trustworthiness UMAP (ours, same sample of queries vs all points)", tw_umap, trustworthiness(x, umap_lib, graph)])
    rows.append(["trustworthiness as scikit-learn computes it within the 5,000-point sample", sklearn_trustworthiness(x[sample], tsne[sample], n_neighbors=10), tw_tsne_lib])
    rows.extend(variant_rows)
    table(
        f"Whole analysis of a {args.n:,}-point run (Fashion-MNIST PCA-{args.dim}): shared exact kNN graph vs the same library calls made separately (seconds; both in this process, one after the other)",
        ["step", "shared graph (ours)", "separate library calls"],
        rows,
    )


# ---------------------------------------------------------------- the kNN graph alone
def bench_knn(args: argparse.Namespace) -> None:
    """The k = 90 graph of N points: ours (exact, faiss) against pynndescent (the graph before issue
    10) and scikit-learn's brute force, interleaved over --repeats rounds (medians), since the
    machine's load changes under any one of them."""
    from pynndescent import NNDescent
    from sklearn.neighbors import NearestNeighbors

    pixels, _ = fashion_pixels()
    x = pca(pixels[: args.n], args.dim, args.seed)
    NNDescent(x[:300], n_neighbors=16, random_state=0, n_jobs=-1, low_memory=True)  # numba compilation
    calls: dict[str, Callable[[], Any]] = {
        "ours: exact (faiss flat, BLAS + reservoir, float32 re-rank)": lambda: compute_knn(x).indices,
        "pynndescent NNDescent (approximate; before issue 10)": lambda: NNDescent(
            x, n_neighbors=91, random_state=args.seed, n_jobs=-1, low_memory=True
        ).neighbor_graph[0][:, 1:],
        "scikit-learn NearestNeighbors(algorithm='brute', n_jobs=-1)": lambda: NearestNeighbors(
            n_neighbors=90, algorithm="brute", n_jobs=-1
        ).fit(x).kneighbors(return_distance=False),
    }
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    results: dict[str, np.ndarray] = {}
    for round_ in range(args.repeats):
        for name, call in calls.items():
            results[name], took = timed(call, f"round {round_ + 1}: {name}")
            seconds[name].append(took)
    exact = results[next(iter(calls))]
    rows = []
    for name, took in seconds.items():
        recall = np.mean([len(set(a) & set(b)) for a, b in zip(results[name][:, :10], exact[:, :10])]) / 10
        rows.append([name, float(np.median(took)), " / ".join(f"{t:.1f}" for t in took), recall])
    table(
        f"kNN graph (k = 90) of {len(x):,} points, Fashion-MNIST PCA-{args.dim}: medians of {args.repeats} interleaved rounds",
        ["graph", "median seconds", "each round", "recall@10 vs ours"],
        rows,
    )


# ---------------------------------------------------------------- HDBSCAN: ours vs scikit-learn
def bench_hdbscan(args: argparse.Namespace) -> None:
    """HDBSCAN (default parameters) on the UMAP-10 map of Fashion-MNIST, as the fmnist pipeline clusters it.

    Ours (ml.analysis.clustering: fast_hdbscan above 10,000 points) on all N points; then ours and
    scikit-learn's HDBSCAN on the same random subset with the same resolved parameters, and
    their agreement (ARI, equal noise). scikit-learn on all points only with --sklearn-full.
    """
    from sklearn.cluster import HDBSCAN

    from ml.analysis import density
    from ml.analysis.clustering import make_clustering
    from ml.analysis.projection import make_projection

    warm(args)
    pixels, labels = fashion_pixels()
    x = pca(pixels[: args.n], args.dim, args.seed)
    graph, _ = timed(lambda: compute_knn(x), "kNN graph")
    params = {"n_neighbors": args.n_neighbors, "min_dist": 0.0, "n_components": 10}
    coords, _ = timed(lambda: make_projection("umap", params, args.seed).fit_transform(x, graph), "UMAP-10")
    rows: list[list[Any]] = []
    model, seconds = timed(lambda: make_clustering("hdbscan", {}, args.seed).fit(coords), f"ours on {len(coords):,}")
    ours_all = model.labels_
    scores = agreement(labels[: args.n], ours_all)
    rows.append([f"ours ({model.params_['implementation']}), all {len(coords):,}", seconds, _clusters(ours_all), "", f"{scores['ari']:.3f} / {scores['nmi']:.3f}"])
    if args.sklearn_full:
        resolved = {k: model.params_[k] for k in ("min_cluster_size", "min_samples")}
        reference, seconds = timed(lambda: HDBSCAN(**resolved, n_jobs=-1, copy=True).fit_predict(coords), f"scikit-learn on {len(coords):,}")
        rows.append([f"scikit-learn HDBSCAN, all {len(coords):,}", seconds, _clusters(reference), f"{agreement(reference, ours_all)['ari']:.4f}", ""])
    subset = np.sort(np.random.default_rng(args.seed).choice(len(coords), size=min(args.subset, len(coords)), replace=False))
    part = np.ascontiguousarray(coords[subset])
    # The fast path at any size of subset, so that the comparison is of the two implementations.
    density.HDBSCAN_FAST_MIN_POINTS = 0
    model, seconds = timed(lambda: make_clustering("hdbscan", {}, args.seed).fit(part), f"ours on the {len(part):,} subset")
    resolved = {k: model.params_[k] for k in ("min_cluster_size", "min_samples")}
    rows.append([f"ours ({model.params_['implementation']}), subset of {len(part):,} ({resolved})", seconds, _clusters(model.labels_), "", ""])
    reference, seconds = timed(lambda: HDBSCAN(**resolved, n_jobs=-1, copy=True).fit_predict(part), f"scikit-learn on the {len(part):,} subset")
    same = agreement(reference, model.labels_)
    rows.append([f"scikit-learn HDBSCAN, same subset and parameters", seconds, _clusters(reference), f"{same['ari']:.4f}", f"points noise in one and not the other: {int(np.sum((reference == -1) != (model.labels_ == -1))):,}"])
    table(
        f"HDBSCAN (default parameters) on the UMAP-10 map (n_neighbors {args.n_neighbors}, min_dist 0) of Fashion-MNIST PCA-{args.dim}, "
        f"{len(coords):,} points × 10 dimensions",
        ["run", "seconds", "clusters / noise", "ARI vs scikit-learn", "note (ARI / NMI vs classes)"],
        rows,
    )


def _clusters(labels: np.ndarray) -> str:
    return f"{int(labels.max()) + 1} / {np.mean(labels == -1):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=("digits", "fmnist", "projections", "whole", "hdbscan", "knn"))
    parser.add_argument("--n", type=int, default=10_000, help="points (projections, whole)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-neighbors", type=int, default=30, help="UMAP n_neighbors for the fmnist pipeline")
    parser.add_argument("--embedding", help="fmnist: a run directory whose embeddings.npy/labels.npy replace PCA-50")
    parser.add_argument("--normalise", action="store_true", help="fmnist: L2-normalise the embedding first (cosine geometry)")
    parser.add_argument("--gmm-n-init", type=int, default=1, help="fmnist: gmm's EM starts per fit, the best likelihood kept")
    parser.add_argument("--concat", help="fmnist: a second run directory whose embedding is concatenated to --embedding's")
    parser.add_argument("--scan-seeds", type=int, default=0, help="fmnist: SCAN clusterings of the embedding, one row each (seeds --seed, --seed + 1, ...)")
    parser.add_argument("--gmm-seeds", type=int, default=1, help="fmnist: EM starts of gmm on the same map, one row each (seeds --seed, --seed + 1, ...)")
    parser.add_argument("--skip-hdbscan", action="store_true", help="fmnist: leave out HDBSCAN (O(N²) on 70k points)")
    parser.add_argument("--sklearn-max", type=int, default=10_000, help="largest N for scikit-learn's TSNE")
    parser.add_argument("--dim", type=int, default=50, help="projections, whole, hdbscan: PCA components of the pixels as the embedding")
    parser.add_argument("--pynndescent", action="store_true", help="whole: also time the approximate graph used before issue 10 (in no total)")
    parser.add_argument("--repeats", type=int, default=3, help="knn: interleaved rounds")
    parser.add_argument("--tsne-variant", nargs="*", default=[], metavar="KEY=VALUE", help="whole: also time our t-SNE with these parameters (in no total)")
    parser.add_argument("--subset", type=int, default=20_000, help="hdbscan: points of the subset on which scikit-learn is compared")
    parser.add_argument("--sklearn-full", action="store_true", help="hdbscan: scikit-learn on all points too (≈10 minutes at 70k)")
    args = parser.parse_args()
    sections = {
        "digits": bench_digits,
        "fmnist": bench_fmnist,
        "projections": bench_projections,
        "whole": bench_whole,
        "hdbscan": bench_hdbscan,
        "knn": bench_knn,
    }
    sections[args.section](args)


if __name__ == "__main__":
    main()
