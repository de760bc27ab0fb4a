"""Registry records → response models."""
from __future__ import annotations

from pathlib import Path

from app import run_files
from app.records import Analysis, Job, Run
from app.registry import Registry
from app.schemas import AnalysisOut, JobOut, RunDetail, RunSummary
from ml.analysis.decoding import has_decoder


def job_out(job: Job) -> JobOut:
    return JobOut(id=job.id, kind=job.kind, run_id=job.run_id, target_id=job.target_id,  # type: ignore[arg-type]
                  status=job.status, progress=job.progress, metrics=job.metrics, error=job.error,  # type: ignore[arg-type]
                  cancel_requested=job.cancel_requested is not None, depends_on=job.depends_on, created=job.created,
                  started=job.started, finished=job.finished)


def analysis_out(analysis: Analysis) -> AnalysisOut:
    """The stability job's summary is kept in a clustering's metrics and shown beside them."""
    metrics = dict(analysis.metrics) if analysis.metrics is not None else None
    stability = metrics.pop("stability", None) if metrics is not None else None
    return AnalysisOut(id=analysis.id, run_id=analysis.run_id, method=analysis.method, params=analysis.params,
                       status=analysis.status, metrics=metrics, job_id=analysis.job_id,  # type: ignore[arg-type]
                       created=analysis.created, on=analysis.on, stability=stability)


def run_summary(run: Run) -> RunSummary:
    return RunSummary(id=run.id, dataset=run.dataset, method=run.method, status=run.status,  # type: ignore[arg-type]
                      config=run.config, metrics=run.metrics, created=run.created, job_id=run.job_id)


def run_detail(run: Run, registry: Registry) -> RunDetail:
    run_dir = Path(run.run_dir)
    job = registry.get_job(run.job_id) if run.job_id else None
    return RunDetail(
        **run_summary(run).model_dump(),
        projections=[analysis_out(p) for p in registry.list_projections(run.id)],
        clusterings=[analysis_out(c) for c in registry.list_clusterings(run.id)],
        history=run_files.history(run_dir),
        job=job_out(job) if job else None,
        embedding_shape=run_files.embedding_shape(run_dir) if run.status == "succeeded" else None,
        has_reconstructions=(run_dir / "reconstructions.npz").exists(),
        has_decoder=has_decoder(run.method, run.config.get("method_params")),
        trained_with=run_files.trained_with(run_dir),
    )
