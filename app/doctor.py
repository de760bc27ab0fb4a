"""`latentmap doctor`: check the registry against the files of the data directory, and mend it.

Each check looks for one kind of damage and returns `Finding`s; a finding that can be mended
carries the step that mends it, which `--repair` runs. What is mended and how:
- a finished run, projection or clustering whose files are gone → failed, with the reason;
- a job left `running` by a process that is gone → interrupted (resumable, as at server start-up);
- a run directory with no registry row that holds a complete run → registered again, with the
  projections and clusterings whose files are complete;
- an uploaded dataset whose folder is gone → forgotten (its runs keep their files).
Nothing is ever deleted from disk: an incomplete orphan directory is reported, never removed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from app.records import Run
from app.registry import Registry
from ml import artifacts

# A finished analysis is its array and its meta.json (ml.analysis.run_analyses writes both).
ANALYSIS_FILES = {"projections": "coords.npy", "clusterings": "labels.npy"}
ANALYSIS_META = "meta.json"
RUN_FILES = (artifacts.CONFIG, artifacts.EMBEDDINGS, artifacts.METRICS)


@dataclass
class Finding:
    """One problem: what it concerns, what is wrong, and how `--repair` mends it (None: it cannot)."""

    subject: str
    problem: str
    remedy: str
    mend: Callable[[], None] | None = None
    mended: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "problem": self.problem, "remedy": self.remedy, "mended": self.mended}


def examine(registry: Registry, is_alive: Callable[[int], bool]) -> list[Finding]:
    """Every problem in the data directory of `registry`; changes nothing."""
    runs = registry.list_runs()
    return [*_missing_run_files(registry, runs), *_missing_analysis_files(registry, runs), *_stale_jobs(registry, is_alive),
            *_orphan_run_dirs(registry, runs), *_missing_datasets(registry)]


def repair(findings: list[Finding]) -> None:
    """Run the mending step of every finding that has one."""
    for finding in findings:
        if finding.mend is not None:
            finding.mend()
            finding.mended = True


def _fail(registry: Registry, job_id: str | None, reason: str, mark_row: Callable[[], None]) -> Callable[[], None]:
    """Mark the job that made a row failed with `reason` (the row follows it), or the row alone if it has no job."""
    def mend() -> None:
        job = registry.get_job(job_id) if job_id else None
        if job is None or registry.finish_job(job.id, "failed", reason, only_if_running=False) is None:
            mark_row()
    return mend


def _missing_run_files(registry: Registry, runs: list[Run]) -> list[Finding]:
    findings = []
    for run in runs:
        if run.status != "succeeded":
            continue
        run_dir = Path(run.run_dir)
        if not run_dir.is_dir():
            problem = f"its directory {_shown(registry, run_dir)} is missing"
        elif not (run_dir / artifacts.EMBEDDINGS).is_file():
            problem = f"{artifacts.EMBEDDINGS} is missing from {_shown(registry, run_dir)}"
        else:
            continue
        reason = f"latentmap doctor: {problem}"
        findings.append(Finding(f"run {run.id}", problem, "mark the run failed",
                                _fail(registry, run.job_id, reason, lambda run=run: registry.update_run(run.id, status="failed"))))
    return findings


def _missing_analysis_files(registry: Registry, runs: list[Run]) -> list[Finding]:
    findings = []
    for run in runs:
        for table, file_name in ANALYSIS_FILES.items():
            listed = registry.list_projections(run.id) if table == "projections" else registry.list_clusterings(run.id)
            for analysis in listed:
                path = Path(run.run_dir) / table / analysis.id / file_name
                if analysis.status != "succeeded" or path.is_file():
                    continue
                problem = f"{file_name} is missing from {_shown(registry, path.parent)}"
                mark = lambda table=table, analysis=analysis: registry.update_analysis(table, analysis.id, "failed")  # noqa: E731
                findings.append(Finding(f"{table[:-1]} {analysis.id} of run {run.id}", problem, f"mark the {table[:-1]} failed",
                                        _fail(registry, analysis.job_id, f"latentmap doctor: {problem}", mark)))
    return findings


def _stale_jobs(registry: Registry, is_alive: Callable[[int], bool]) -> list[Finding]:
    def interrupt(job_id: str) -> None:
        registry.finish_job(job_id, "interrupted", "the process running this job is gone (found by latentmap doctor)")

    return [Finding(f"job {job.id} ({job.kind} of run {job.run_id})",
                    f"marked running, but its process {job.worker_pid or '(none recorded)'} is gone",
                    "mark it interrupted (it can be resumed)", lambda job_id=job.id: interrupt(job_id))
            for job in registry.stale_jobs(is_alive)]


def _orphan_run_dirs(registry: Registry, runs: list[Run]) -> list[Finding]:
    runs_dir = registry.data_dir / "runs"
    if not runs_dir.is_dir():
        return []
    known = {Path(run.run_dir).resolve() for run in runs}
    findings = []
    for folder in sorted(path for path in runs_dir.iterdir() if path.is_dir() and not path.name.startswith(".")):
        if folder.resolve() in known:
            continue
        missing = [name for name in RUN_FILES if not (folder / name).is_file()]
        if missing:
            findings.append(Finding(f"directory {_shown(registry, folder)}", "no run in the registry names it, and it is "
                                    f"incomplete ({', '.join(missing)} missing)", "none: remove it by hand if it is not needed"))
        else:
            findings.append(Finding(f"directory {_shown(registry, folder)}", "a complete run that the registry does not list",
                                    "register the run again, with its complete projections and clusterings",
                                    lambda folder=folder: _register(registry, folder)))
    return findings


def _register(registry: Registry, folder: Path) -> None:
    """Re-register the complete run in `folder` (named by its id) and its complete analyses, as succeeded."""
    config = artifacts.read_json(folder / artifacts.CONFIG)
    metrics = artifacts.read_json(folder / artifacts.METRICS)
    registry.create_run(folder.name, str(config.get("dataset", "?")), str(config.get("method", "?")), config, folder)
    registry.update_run(folder.name, status="succeeded", metrics=metrics)
    for table, file_name in ANALYSIS_FILES.items():
        for analysis_dir in sorted((folder / table).glob("*/")):
            if not ((analysis_dir / file_name).is_file() and (analysis_dir / ANALYSIS_META).is_file()):
                continue
            meta = artifacts.read_json(analysis_dir / ANALYSIS_META)
            params = meta.get("params") or {}
            if table == "projections":
                registry.add_projection(analysis_dir.name, folder.name, meta.get("method", "?"), params, None, status="succeeded")
            else:
                registry.add_clustering(analysis_dir.name, folder.name, meta.get("method", "?"), params,
                                        meta.get("on", "embedding"), None, status="succeeded")
            registry.update_analysis(table, analysis_dir.name, "succeeded", meta)


def _missing_datasets(registry: Registry) -> list[Finding]:
    return [Finding(f"dataset {dataset.name}", f"its folder {_shown(registry, Path(dataset.path))} is gone",
                    "forget the dataset (runs trained on it keep their files)",
                    lambda name=dataset.name: registry.forget_dataset(name))
            for dataset in registry.list_datasets() if not Path(dataset.path).exists()]


def _shown(registry: Registry, path: Path) -> str:
    """A path as a person reads it in the report: relative to the data directory when inside it."""
    try:
        return Path(path).relative_to(registry.data_dir).as_posix()
    except ValueError:
        return str(path)
