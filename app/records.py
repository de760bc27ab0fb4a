"""The registry's records (datasets, runs, jobs, projections and clusterings), how they are read
from a row and written as JSON, and the job statuses. Plain data: no connection, no SQL."""
from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "cancelled", "interrupted")
JOB_KINDS = ("train", "project", "cluster", "stability", "timeline", "import", "knn")
# Jobs that make a run (the run row follows their status); the others make something of a run.
RUN_JOB_KINDS = ("train", "import")


def new_id(prefix: str) -> str:
    """A short unique id such as `r3f9a0c1b2d`; the prefix says what it names (r, j, p, c)."""
    return prefix + uuid.uuid4().hex[:11]


def dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=_json_default)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass
class DatasetRecord:
    name: str
    path: str
    n: int
    report: dict[str, Any]
    created: float

    @property
    def description(self) -> str:
        """What the dataset is, for listings: a zip's images, or the images an import carried (and which run)."""
        if run_id := self.report.get("import_run"):
            return f"images of the imported embedding {run_id}"
        return "uploaded images"


@dataclass
class Run:
    id: str
    dataset: str
    method: str
    config: dict[str, Any]
    status: str
    metrics: dict[str, Any] | None
    created: float
    run_dir: str
    job_id: str | None


@dataclass
class Job:
    id: str
    kind: str
    run_id: str
    target_id: str | None
    params: dict[str, Any]
    status: str
    progress: float
    metrics: dict[str, Any] | None
    error: str | None
    cancel_requested: float | None
    created: float
    started: float | None
    finished: float | None
    worker_pid: int | None
    depends_on: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Analysis:
    """A projection or a clustering of a run (`on` is set for clusterings only)."""

    id: str
    run_id: str
    method: str
    params: dict[str, Any]
    status: str
    metrics: dict[str, Any] | None
    created: float
    job_id: str | None
    on: str | None = None


def dataset_from_row(row: sqlite3.Row, data_dir: Path) -> DatasetRecord:
    """A dataset row; `path` is absolute (stored relative to the data directory)."""
    return DatasetRecord(name=row["name"], path=str(data_dir / row["path"]), n=row["n"], report=loads(row["report"]),
                         created=row["created"])


def run_from_row(row: sqlite3.Row, data_dir: Path) -> Run:
    """A run row; `run_dir` is absolute (stored relative to the data directory)."""
    return Run(id=row["id"], dataset=row["dataset"], method=row["method"], config=loads(row["config"]),
               status=row["status"], metrics=loads(row["metrics"]), created=row["created"],
               run_dir=str(data_dir / row["run_dir"]), job_id=row["job_id"])


def job_from_row(row: sqlite3.Row) -> Job:
    return Job(id=row["id"], kind=row["kind"], run_id=row["run_id"], target_id=row["target_id"],
               params=loads(row["params"]), status=row["status"], progress=row["progress"],
               metrics=loads(row["metrics"]), error=row["error"], cancel_requested=row["cancel_requested"],
               created=row["created"], started=row["started"], finished=row["finished"], worker_pid=row["worker_pid"],
               depends_on=row["depends_on"])


def analysis_from_row(row: sqlite3.Row) -> Analysis:
    keys = row.keys()
    return Analysis(id=row["id"], run_id=row["run_id"], method=row["method"], params=loads(row["params"]),
                    status=row["status"], metrics=loads(row["metrics"]), created=row["created"], job_id=row["job_id"],
                    on=row["on_target"] if "on_target" in keys else None)
