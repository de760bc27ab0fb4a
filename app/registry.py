"""The SQLite registry of datasets, runs, jobs, projections and clusterings.

One file (DATA_DIR/latentmap.sqlite3) in WAL mode with a busy timeout, so the CLI, the server and
its worker processes can read and write it at the same time. Each call opens a short-lived
connection: connections are never shared between threads or processes. A job row is written
before the job is queued, and a row turns `succeeded` only after its artifacts are on disk.
"""
from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from app.migrations import RegistryError, migrate, unusable
from app.records import (FINISHED, JOB_KINDS, RUN_JOB_KINDS, Analysis, DatasetRecord, Job, Run, analysis_from_row,
                         dataset_from_row, dumps, job_from_row, new_id, run_from_row)


class Registry:
    """Typed access to the registry file; safe to use from several processes at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.data_dir = self.path.parent  # every path the registry stores is relative to it

    def open(self) -> "Registry":
        """Create the file if needed, switch it to WAL mode and migrate it to this code's schema.

        Raises RegistryError (one line) for a file that is not a registry, one newer than this
        code, or a data directory that cannot be written; nothing is changed then.
        """
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            with self._connect() as connection:
                migrate(connection, self.path, self.data_dir)
                # After the migration: a step that fails leaves even the file's header as it was.
                connection.execute("PRAGMA journal_mode=WAL")
        except RegistryError:
            raise
        except sqlite3.DatabaseError as exc:
            if "readonly" in str(exc) or "unable to open" in str(exc):
                raise RegistryError(f"{self.data_dir}: the data directory is not writable ({exc})") from None
            raise unusable(self.path, f"is not a readable latentmap registry ({exc})") from None
        except OSError as exc:
            raise RegistryError(f"{self.data_dir}: cannot create or write the data directory"
                                f" ({exc.strerror or exc})") from None
        return self

    def _relative(self, path: Path) -> str:
        """How a path is stored: relative to the data directory when it is inside it."""
        try:
            return Path(path).resolve().relative_to(self.data_dir.resolve()).as_posix()
        except ValueError:
            return str(path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA busy_timeout=30000")
        connection.execute("PRAGMA synchronous=NORMAL")
        try:
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock up front so read-then-write steps cannot interleave."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # ----- datasets -------------------------------------------------------------------------
    def add_dataset(self, name: str, path: Path, n: int, report: dict[str, Any]) -> DatasetRecord:
        """Register an uploaded dataset; raises KeyError when the name is taken."""
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM datasets WHERE name = ?", (name,)).fetchone():
                raise KeyError(name)
            connection.execute(
                "INSERT INTO datasets (name, path, n, report, created) VALUES (?, ?, ?, ?, ?)",
                (name, self._relative(path), n, dumps(report), time.time()),
            )
        record = self.get_dataset(name)
        assert record is not None
        return record

    def forget_dataset(self, name: str) -> None:
        """Remove a dataset's row (its runs keep their files and the name they were trained on)."""
        with self._transaction() as connection:
            connection.execute("DELETE FROM datasets WHERE name = ?", (name,))

    def get_dataset(self, name: str) -> DatasetRecord | None:
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM datasets WHERE name = ?", (name,)).fetchone()
        return None if row is None else dataset_from_row(row, self.data_dir)

    def list_datasets(self) -> list[DatasetRecord]:
        with self._connect() as connection:
            rows = connection.execute("SELECT * FROM datasets ORDER BY created").fetchall()
        return [dataset_from_row(row, self.data_dir) for row in rows]

    # ----- runs -----------------------------------------------------------------------------
    def create_run(self, run_id: str, dataset: str, method: str, config: dict[str, Any], run_dir: Path) -> Run:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO runs (id, dataset, method, config, status, created, run_dir) VALUES (?, ?, ?, ?, 'queued', ?, ?)",
                (run_id, dataset, method, dumps(config), time.time(), self._relative(run_dir)),
            )
        return self.get_run(run_id)  # type: ignore[return-value]

    def get_run(self, run_id: str) -> Run | None:
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else run_from_row(row, self.data_dir)

    def list_runs(self) -> list[Run]:
        with self._connect() as connection:
            rows = connection.execute("SELECT * FROM runs ORDER BY created DESC").fetchall()
        return [run_from_row(row, self.data_dir) for row in rows]

    def update_run(self, run_id: str, *, status: str | None = None, metrics: dict[str, Any] | None = None,
                   job_id: str | None = None) -> None:
        assignments, values = [], []
        for column, value in (("status", status), ("metrics", dumps(metrics)), ("job_id", job_id)):
            if value is not None:
                assignments.append(f"{column} = ?")
                values.append(value)
        if assignments:
            with self._transaction() as connection:
                connection.execute(f"UPDATE runs SET {', '.join(assignments)} WHERE id = ?", (*values, run_id))

    def delete_run(self, run_id: str) -> None:
        """Remove a run and every row that belongs to it (the caller removes its directory)."""
        with self._transaction() as connection:
            for table, column in (("projections", "run_id"), ("clusterings", "run_id"), ("jobs", "run_id"), ("runs", "id")):
                connection.execute(f"DELETE FROM {table} WHERE {column} = ?", (run_id,))

    # ----- projections and clusterings ------------------------------------------------------
    def add_projection(self, projection_id: str, run_id: str, method: str, params: dict[str, Any], job_id: str | None,
                       status: str = "queued") -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO projections (id, run_id, method, params, status, created, job_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (projection_id, run_id, method, dumps(params), status, time.time(), job_id),
            )

    def add_clustering(self, clustering_id: str, run_id: str, method: str, params: dict[str, Any], on: str,
                       job_id: str | None, status: str = "queued") -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO clusterings (id, run_id, method, params, on_target, status, created, job_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (clustering_id, run_id, method, dumps(params), on, status, time.time(), job_id),
            )

    def update_analysis(self, table: str, analysis_id: str, status: str, metrics: dict[str, Any] | None = None) -> None:
        assert table in ("projections", "clusterings")
        with self._transaction() as connection:
            if metrics is None:
                connection.execute(f"UPDATE {table} SET status = ? WHERE id = ?", (status, analysis_id))
            else:
                connection.execute(f"UPDATE {table} SET status = ?, metrics = ? WHERE id = ?",
                                   (status, dumps(metrics), analysis_id))

    def get_projection(self, projection_id: str) -> Analysis | None:
        return self._get_analysis("projections", projection_id)

    def get_clustering(self, clustering_id: str) -> Analysis | None:
        return self._get_analysis("clusterings", clustering_id)

    def list_projections(self, run_id: str) -> list[Analysis]:
        return self._list_analyses("projections", run_id)

    def list_clusterings(self, run_id: str) -> list[Analysis]:
        return self._list_analyses("clusterings", run_id)

    def _get_analysis(self, table: str, analysis_id: str) -> Analysis | None:
        with self._connect() as connection:
            row = connection.execute(f"SELECT * FROM {table} WHERE id = ?", (analysis_id,)).fetchone()
        return None if row is None else analysis_from_row(row)

    def _list_analyses(self, table: str, run_id: str) -> list[Analysis]:
        with self._connect() as connection:
            rows = connection.execute(f"SELECT * FROM {table} WHERE run_id = ? ORDER BY created", (run_id,)).fetchall()
        return [analysis_from_row(row) for row in rows]

    # ----- jobs -----------------------------------------------------------------------------
    def create_job(self, kind: str, run_id: str, params: dict[str, Any], *, target_id: str | None = None,
                   job_id: str | None = None, status: str = "queued", worker_pid: int | None = None,
                   depends_on: str | None = None) -> Job:
        """Write the job row (queued, or running for in-process CLI work) before any work starts."""
        if kind not in JOB_KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        job_id = job_id or new_id("j")
        now = time.time()
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO jobs (id, kind, run_id, target_id, params, status, created, started, worker_pid, depends_on)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, kind, run_id, target_id, dumps(params), status, now,
                 now if status == "running" else None, worker_pid, depends_on),
            )
        return self.get_job(job_id)  # type: ignore[return-value]

    def get_job(self, job_id: str) -> Job | None:
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else job_from_row(row)

    def list_jobs(self, run_id: str | None = None, statuses: tuple[str, ...] | None = None) -> list[Job]:
        query, values = "SELECT * FROM jobs WHERE 1 = 1", []
        if run_id is not None:
            query += " AND run_id = ?"
            values.append(run_id)
        if statuses:
            query += f" AND status IN ({', '.join('?' * len(statuses))})"
            values.extend(statuses)
        with self._connect() as connection:
            rows = connection.execute(query + " ORDER BY seq", values).fetchall()
        return [job_from_row(row) for row in rows]

    def claim_next_job(self, worker_pid: int) -> Job | None:
        """Atomically take the oldest queued job whose dependency (if any) has succeeded."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT id FROM jobs WHERE status = 'queued' AND (depends_on IS NULL OR depends_on IN"
                " (SELECT id FROM jobs WHERE status = 'succeeded')) ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            connection.execute(
                "UPDATE jobs SET status = 'running', started = ?, worker_pid = ?, progress = 0 WHERE id = ?",
                (time.time(), worker_pid, row["id"]),
            )
            claimed = connection.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
            _mirror(connection, job_from_row(claimed), "running")
        return job_from_row(claimed)

    def set_progress(self, job_id: str, progress: float, metrics: dict[str, Any]) -> None:
        with self._transaction() as connection:
            connection.execute("UPDATE jobs SET progress = ?, metrics = ? WHERE id = ? AND status = 'running'",
                               (max(0.0, min(1.0, float(progress))), dumps(metrics), job_id))

    def cancel_requested(self, job_id: str) -> bool:
        with self._connect() as connection:
            row = connection.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row is None or row["cancel_requested"] is not None

    def request_cancel(self, job_id: str) -> Job:
        """Ask a job to stop: a queued job is cancelled at once, a running one at its next progress call.

        Raises LookupError for an unknown id and ValueError when the job has already finished.
        """
        with self._transaction() as connection:
            row = connection.execute("SELECT status, cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise LookupError(job_id)
            if row["status"] in FINISHED:
                raise ValueError(f"job {job_id} has already finished ({row['status']})")
            if row["cancel_requested"] is not None:
                raise ValueError(f"job {job_id} is already being cancelled")
            now = time.time()
            if row["status"] == "queued":
                connection.execute(
                    "UPDATE jobs SET status = 'cancelled', cancel_requested = ?, finished = ?, error = ? WHERE id = ?",
                    (now, now, "cancelled before it started", job_id),
                )
            else:
                connection.execute("UPDATE jobs SET cancel_requested = ? WHERE id = ?", (now, job_id))
        job = self.get_job(job_id)
        assert job is not None
        if job.status == "cancelled":
            self.mirror_job_status(job, "cancelled")
        return job

    def finish_job(self, job_id: str, status: str, error: str | None = None, *, only_if_running: bool = True) -> Job | None:
        """Set a final status; returns the job, or None when it was no longer running (someone else finished it).

        The job and the row it makes (run, projection or clustering) change in one transaction, so no
        reader sees a succeeded job next to a run that is still running.
        """
        assert status in FINISHED
        with self._transaction() as connection:
            query = "UPDATE jobs SET status = ?, error = ?, finished = ?" + (", progress = 1" if status == "succeeded" else "")
            query += " WHERE id = ?" + (" AND status = 'running'" if only_if_running else "")
            changed = connection.execute(query, (status, error, time.time(), job_id)).rowcount
            row = connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if changed and row is not None:
                _mirror(connection, job_from_row(row), status)
        if not changed or row is None:
            return None
        job = job_from_row(row)
        if status != "succeeded":
            self._fail_dependents(job)
        return job

    def requeue_job(self, job_id: str, params: dict[str, Any]) -> Job:
        with self._transaction() as connection:
            connection.execute(
                "UPDATE jobs SET status = 'queued', params = ?, error = NULL, cancel_requested = NULL, started = NULL,"
                " finished = NULL, worker_pid = NULL, progress = 0 WHERE id = ?",
                (dumps(params), job_id),
            )
        job = self.get_job(job_id)
        assert job is not None
        self.mirror_job_status(job, "queued")
        return job

    def mirror_job_status(self, job: Job, status: str) -> None:
        """Keep the run / projection / clustering row in step with the job that makes it."""
        with self._transaction() as connection:
            _mirror(connection, job, status)

    def _fail_dependents(self, job: Job) -> None:
        for dependent in self.list_jobs(statuses=("queued",)):
            if dependent.depends_on == job.id:
                with self._transaction() as connection:
                    connection.execute(
                        "UPDATE jobs SET status = 'failed', error = ?, finished = ? WHERE id = ? AND status = 'queued'",
                        (f"job {job.id} it depends on ended {job.status}", time.time(), dependent.id),
                    )
                failed = self.get_job(dependent.id)
                if failed is not None:
                    self.mirror_job_status(failed, "failed")
                    self._fail_dependents(failed)

    def stale_jobs(self, is_alive: Callable[[int], bool]) -> list[Job]:
        """Jobs marked running whose process is gone (another live process, e.g. a CLI `latentmap train`, keeps its own)."""
        return [job for job in self.list_jobs(statuses=("running",))
                if job.worker_pid is None or job.worker_pid == os.getpid() or not is_alive(job.worker_pid)]

    def reconcile(self, is_alive: Callable[[int], bool]) -> list[Job]:
        """At start-up: jobs left running by a process that is gone become `interrupted` (resumable)."""
        reason = "the process running this job stopped (server restart)"
        return [job for job in self.stale_jobs(is_alive) if self.finish_job(job.id, "interrupted", reason) is not None]


def _mirror(connection: sqlite3.Connection, job: Job, status: str) -> None:
    if job.kind in RUN_JOB_KINDS:
        connection.execute("UPDATE runs SET status = ? WHERE id = ?", (status, job.run_id))
    elif job.target_id is not None:
        table = "projections" if job.kind == "project" else "clusterings"
        connection.execute(f"UPDATE {table} SET status = ? WHERE id = ?", (status, job.target_id))
