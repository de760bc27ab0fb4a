"""Job functions shared by the CLI (in-process) and the worker processes.

Jobs are module-level functions on an allowlist (`TASKS`), taking JSON-serialisable parameters
from their registry row. Each reports through a progress callback that writes progress to the
registry and asks the work to stop when a cancel was requested. A job's row (and its run /
projection / clustering row) turns `succeeded` only after the work has written its artifacts.
"""
from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from app import catalog
from app.dataset_source import open_dataset
from app.records import Job, new_id
from app.registry import Registry
from ml.datasets import DatasetError, ImageDataset
from ml.params import ParamError
from ml.progress import Stopped

log = logging.getLogger("latentmap.tasks")

DEFAULT_PROJECTION = "umap"
DEFAULT_CLUSTERING = "kmeans"
# The map shown while the default projection is computed: instant at every size the product handles.
PREVIEW_PROJECTION = "pca"
DEFAULT_CLUSTERS = 10

ProgressListener = Callable[[dict[str, float]], None]


@dataclass
class JobContext:
    """What a job function needs: the registry, its job row and where data lives."""

    registry: Registry
    job: Job
    data_dir: Path
    datasets_dir: Path | None = None
    listener: ProgressListener | None = None  # e.g. the CLI's progress bar
    dataset: ImageDataset | None = None  # already loaded by the caller (the CLI), else loaded here
    result: dict[str, Any] = field(default_factory=dict)

    def run_dir(self) -> Path:
        return self.data_dir / "runs" / self.job.run_id


class JobProgress:
    """The progress callback of one job: throttled registry writes, cancel checks, a listener.

    `__call__(iteration, step, metrics) -> bool` follows ml.progress; True asks the work to stop.
    """

    def __init__(self, registry: Registry, job_id: str, listener: ProgressListener | None = None,
                 interval: float = 0.25) -> None:
        self.registry, self.job_id, self.listener, self.interval = registry, job_id, listener, interval
        self._last_write = self._last_check = float("-inf")
        self._stop = False

    def __call__(self, iteration: int, step: int, metrics: dict[str, float]) -> bool:
        now = time.monotonic()
        clean = {key: _plain(value) for key, value in metrics.items()}
        if self.listener is not None:
            self.listener(clean)
        if now - self._last_write >= self.interval or clean.get("fraction", 0.0) >= 1.0:
            self.registry.set_progress(self.job_id, float(clean.get("fraction", 0.0)), clean)
            self._last_write = now
        if now - self._last_check >= self.interval:
            self._stop = self.registry.cancel_requested(self.job_id)
            self._last_check = now
        return self._stop


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# ----- the job functions ----------------------------------------------------------------------
def train(context: JobContext) -> dict[str, Any]:
    """Train a run (params: config, resume, follow_ups); returns metrics.json's content."""
    from ml.training import TrainConfig, train as train_model

    job, registry = context.job, context.registry
    config = dict(job.params["config"])
    dataset = context.dataset or open_dataset(config["dataset"], registry, context.datasets_dir)
    registry.update_run(job.run_id, status="running")
    progress = JobProgress(registry, job.id, context.listener)
    metrics = train_model(TrainConfig(**config), dataset, context.run_dir(), progress=progress,
                          resume=bool(job.params.get("resume", False)))
    registry.update_run(job.run_id, metrics=metrics)
    context.result = {"metrics": metrics, "n": len(dataset)}
    return metrics


def project(context: JobContext) -> dict[str, Any]:
    """Project a run's embedding (params: method, params, seed) into projections/<target_id>/."""
    from ml.analysis.run_analyses import run_projection

    job = context.job
    meta = run_projection(context.run_dir(), job.params["method"], job.params.get("params") or {},
                          seed=int(job.params.get("seed", 0)),
                          progress=JobProgress(context.registry, job.id, context.listener), projection_id=job.target_id)
    context.registry.update_analysis("projections", job.target_id or meta["id"], "running", meta)
    return meta


def cluster(context: JobContext) -> dict[str, Any]:
    """Cluster a run's embedding or one of its projections (params: method, params, on, seed)."""
    from ml.analysis.run_analyses import run_clustering

    job = context.job
    meta = run_clustering(context.run_dir(), job.params["method"], job.params.get("params") or {},
                          on=job.params.get("on", "embedding"), seed=int(job.params.get("seed", 0)),
                          progress=JobProgress(context.registry, job.id, context.listener), clustering_id=job.target_id)
    context.registry.update_analysis("clusterings", job.target_id or meta["id"], "running", meta)
    return meta


def stability(context: JobContext) -> dict[str, Any]:
    """Rerun a clustering over seeds and bootstrap samples (params: clustering_id, repeats, seed); its
    summary joins the clustering's metrics as `stability`."""
    from ml.analysis.stability import run_stability

    job, registry = context.job, context.registry
    clustering_id = job.params["clustering_id"]
    summary = run_stability(context.run_dir(), clustering_id, int(job.params["repeats"]), int(job.params.get("seed", 0)),
                            progress=JobProgress(registry, job.id, context.listener))
    row = registry.get_clustering(clustering_id)
    if row is not None:
        shown = {key: summary[key] for key in ("mean_ari", "repeats", "per_cluster")}
        registry.update_analysis("clusterings", clustering_id, row.status, {**(row.metrics or {}), "stability": shown})
    return summary


def import_run(context: JobContext) -> dict[str, Any]:
    """Score an imported embedding and make its map (app.import_job; params: seed, projection_id, follow_ups)."""
    from app.import_job import import_embeddings

    return import_embeddings(context)


def knn_graph(context: JobContext) -> dict[str, Any]:
    """The run's kNN graph, then the scores of the maps made without it (app.import_job; params: seed)."""
    from app.import_job import complete_graph

    return complete_graph(context)


def timeline(context: JobContext) -> dict[str, Any]:
    """Project a run's epoch snapshots into aligned frames (params: method, seed) as timelines/<job id>.npz."""
    from ml.analysis.timeline import run_timeline

    job = context.job
    return run_timeline(context.run_dir(), job.params["method"], int(job.params.get("seed", 0)),
                        progress=JobProgress(context.registry, job.id, context.listener), timeline_id=job.id)


TASKS: dict[str, Callable[[JobContext], dict[str, Any]]] = {"train": train, "project": project, "cluster": cluster,
                                                           "stability": stability, "import": import_run,
                                                           "timeline": timeline, "knn": knn_graph}


def run_job(context: JobContext) -> Job:
    """Run the job's function and record how it ended; never raises for a failure of the work itself."""
    job = context.job
    try:
        task = TASKS[job.kind]
        context.result = {**context.result, "output": task(context)}
    except Stopped:
        status, error = "cancelled", "cancelled on request"
    except (DatasetError, ParamError, FileNotFoundError, ValueError, KeyError) as exc:
        log.warning("job %s failed: %s", job.id, exc)
        status, error = "failed", _reason(exc)
    except MemoryError:
        status, error = "failed", "out of memory; try a smaller batch size or dataset"
    except Exception as exc:  # any other crash of the work: record it, keep the worker alive
        log.error("job %s crashed:\n%s", job.id, traceback.format_exc())
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    else:
        status, error = "succeeded", None
    follow_ups = job.params.get("follow_ups")
    current = context.registry.get_job(job.id)
    if status == "succeeded" and job.kind == "train" and follow_ups and current is not None and current.status == "running":
        # Queued before the training job is marked done, so that whoever sees it succeed (the run
        # page) also sees the map's jobs: never a moment of "succeeded, and no projection coming".
        try:
            queue_default_analyses(context.registry, job.run_id, int(job.params["config"].get("seed", 0)),
                                   projection=follow_ups.get("projection", DEFAULT_PROJECTION),
                                   clustering=follow_ups.get("clustering", DEFAULT_CLUSTERING))
        except ParamError as exc:  # a misconfigured default: the run itself is fine
            log.error("run %s: default analyses not queued: %s", job.run_id, exc)
    context.registry.finish_job(job.id, status, error)
    return context.registry.get_job(job.id) or job


def _reason(exc: BaseException) -> str:
    message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return message or type(exc).__name__


# ----- queueing -------------------------------------------------------------------------------
def queue_training(registry: Registry, config: dict[str, Any], data_dir: Path, *,
                   follow_ups: dict[str, str] | None = None, status: str = "queued",
                   worker_pid: int | None = None) -> tuple[str, Job]:
    """Write the run and its training job rows (the job row exists before any work is queued).

    follow_ups: {"projection": method, "clustering": method} to queue once training has succeeded.
    """
    run_id = new_id("r")
    run_dir = data_dir / "runs" / run_id
    registry.create_run(run_id, config["dataset"], config["method"], config, run_dir)
    job = registry.create_job("train", run_id, {"config": config, "resume": False, "follow_ups": follow_ups},
                              status=status, worker_pid=worker_pid)
    registry.update_run(run_id, job_id=job.id, status=status)
    return run_id, job


def queue_projection(registry: Registry, run_id: str, method: str, params: dict[str, Any], seed: int = 0, *,
                     status: str = "queued", worker_pid: int | None = None,
                     depends_on: str | None = None) -> tuple[str, Job]:
    """Write a projection row and its job row; `params` must already be validated."""
    projection_id = new_id("p")
    job_id = new_id("j")
    registry.add_projection(projection_id, run_id, method, params, job_id, status=status)
    job = registry.create_job("project", run_id, {"method": method, "params": params, "seed": seed},
                              target_id=projection_id, job_id=job_id, status=status, worker_pid=worker_pid,
                              depends_on=depends_on)
    return projection_id, job


def queue_clustering(registry: Registry, run_id: str, method: str, params: dict[str, Any], on: str = "embedding",
                     seed: int = 0, *, status: str = "queued", worker_pid: int | None = None,
                     depends_on: str | None = None) -> tuple[str, Job]:
    """Write a clustering row and its job row; a clustering on a queued projection waits for its job."""
    clustering_id = new_id("c")
    job_id = new_id("j")
    registry.add_clustering(clustering_id, run_id, method, params, on, job_id, status=status)
    job = registry.create_job("cluster", run_id, {"method": method, "params": params, "on": on, "seed": seed},
                              target_id=clustering_id, job_id=job_id, status=status, worker_pid=worker_pid,
                              depends_on=depends_on)
    return clustering_id, job


def queue_stability(registry: Registry, run_id: str, clustering_id: str, repeats: int, seed: int = 0, *,
                    status: str = "queued", worker_pid: int | None = None) -> Job:
    """Write the job row of a finished clustering's stability (its clustering row is left as it is)."""
    return registry.create_job("stability", run_id, {"clustering_id": clustering_id, "repeats": repeats, "seed": seed},
                               status=status, worker_pid=worker_pid)


def queue_timeline(registry: Registry, run_id: str, method: str, seed: int = 0, *, status: str = "queued",
                   worker_pid: int | None = None) -> Job:
    """Write the job row of a run's epoch timeline (GET /api/runs/{id}/timeline shows the newest)."""
    return registry.create_job("timeline", run_id, {"method": method, "seed": seed}, status=status, worker_pid=worker_pid)


def default_cluster_count(run_dir: Path) -> int:
    """k for the default k-means: the number of label values when the run is labelled, else 10."""
    import numpy as np

    labels_path = run_dir / "labels.npy"
    if labels_path.exists():
        labels = np.load(labels_path)
        count = int(len(np.unique(labels[labels >= 0])))
        if count >= 2:
            return count
    return DEFAULT_CLUSTERS


def queue_default_analyses(registry: Registry, run_id: str, seed: int, projection: str = DEFAULT_PROJECTION,
                           clustering: str = DEFAULT_CLUSTERING) -> list[Job]:
    """After training on the server: the default map — a projection (UMAP) and a clustering (k-means,
    k = the number of classes or 10) with default parameters — complete without a click.

    A map at once, then the better map: unless the default projection is PCA itself, a PCA
    projection (well under a second at this size) is queued first, then the clustering, then the
    default projection. The run page shows the PCA map as soon as it exists and switches to the
    default projection when that finishes, since the newest finished projection is the default
    view. The clustering is on the embedding, so it colours the PCA map already.
    """
    run = registry.get_run(run_id)
    if run is None:
        return []
    jobs = []
    if projection != PREVIEW_PROJECTION:
        jobs.append(queue_projection(registry, run_id, PREVIEW_PROJECTION, catalog.validate_projection(PREVIEW_PROJECTION, {}), seed)[1])
    names = {spec.name for spec in catalog.clusterings()[clustering].params.specs}
    given = {"n_clusters": default_cluster_count(Path(run.run_dir))} if "n_clusters" in names else {}
    clustering_params = catalog.validate_clustering(clustering, given)
    jobs.append(queue_clustering(registry, run_id, clustering, clustering_params, "embedding", seed)[1])
    projection_params = catalog.validate_projection(projection, {})
    jobs.append(queue_projection(registry, run_id, projection, projection_params, seed)[1])
    return jobs
