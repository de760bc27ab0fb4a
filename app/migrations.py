"""Schema versions of the registry file and the steps that bring an older file up to date.

The version lives in SQLite's `PRAGMA user_version` (0 for a file written by latentmap 0.1.0,
which had no version). On open, `migrate` runs every pending step in order, all in one
transaction — a step that fails leaves the file exactly as it was — after keeping a copy of the
file beside it (`latentmap.sqlite3.bak-v<N>`, N the version it had). A file newer than this code
is refused, never touched.

To change a table: append a `Migration(version=len(MIGRATIONS) + 1, name=..., apply=...)` whose
`apply(connection, data_dir)` runs plain SQL statements (no `executescript`: it would commit the
transaction half way). Never edit a step that has shipped.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Callable


class RegistryError(Exception):
    """The registry file cannot be used as it is; the message is one line for the person."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sqlite3.Connection, Path], None]


SCHEMA_0_1_0 = """
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    n INTEGER NOT NULL,
    report TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    method TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    metrics TEXT,
    created REAL NOT NULL,
    run_dir TEXT NOT NULL,
    job_id TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    run_id TEXT NOT NULL,
    target_id TEXT,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    metrics TEXT,
    error TEXT,
    cancel_requested REAL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    worker_pid INTEGER,
    depends_on TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
CREATE INDEX IF NOT EXISTS jobs_run ON jobs (run_id);
CREATE TABLE IF NOT EXISTS projections (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    method TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    metrics TEXT,
    created REAL NOT NULL,
    job_id TEXT
);
CREATE TABLE IF NOT EXISTS clusterings (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    method TEXT NOT NULL,
    params TEXT NOT NULL,
    on_target TEXT NOT NULL,
    status TEXT NOT NULL,
    metrics TEXT,
    created REAL NOT NULL,
    job_id TEXT
);
"""


def _create_0_1_0_tables(connection: sqlite3.Connection, data_dir: Path) -> None:
    for statement in SCHEMA_0_1_0.split(";"):
        if statement.strip():
            connection.execute(statement)


def reroot(stored: str, data_dir: Path) -> str:
    """A stored path made relative to `data_dir` where it can be (POSIX separators).

    A path inside `data_dir` loses that prefix; an absolute path from another place (a data
    directory that was moved or mounted elsewhere) is re-rooted on the longest tail of it that
    exists under `data_dir` (…/old/runs/r_1 → runs/r_1); anything else is kept as it was.
    """
    path = PurePath(stored)
    if not path.is_absolute():
        return stored
    try:
        return Path(stored).relative_to(data_dir).as_posix()
    except ValueError:
        pass
    parts = path.parts[1:]
    for start in range(len(parts)):
        tail = PurePath(*parts[start:])
        if (data_dir / tail).exists():
            return tail.as_posix()
    return stored


def _relative_paths(connection: sqlite3.Connection, data_dir: Path) -> None:
    for table, key, column in (("runs", "id", "run_dir"), ("datasets", "name", "path")):
        for row_key, stored in connection.execute(f"SELECT {key}, {column} FROM {table}").fetchall():
            relative = reroot(stored, data_dir)
            if relative != stored:
                connection.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (relative, row_key))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create the 0.1.0 tables", _create_0_1_0_tables),
    Migration(2, "store run and dataset paths relative to the data directory", _relative_paths),
)
CURRENT_VERSION = MIGRATIONS[-1].version


def backup_path(registry_path: Path, version: int) -> Path:
    return registry_path.with_name(f"{registry_path.name}.bak-v{version}")


def latest_backup(registry_path: Path) -> Path | None:
    backups = sorted(registry_path.parent.glob(f"{registry_path.name}.bak-v*"), key=lambda path: path.stat().st_mtime)
    return backups[-1] if backups else None


def unusable(registry_path: Path, reason: str) -> RegistryError:
    backup = latest_backup(registry_path)
    restore = f"; a backup to restore from is {backup}" if backup else "; no backup of it exists"
    return RegistryError(f"{registry_path}: {reason}{restore} (nothing was changed)")


def migrate(connection: sqlite3.Connection, registry_path: Path, data_dir: Path) -> int:
    """Bring the open file up to CURRENT_VERSION; returns the version it had. Autocommit connection."""
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > CURRENT_VERSION:
        raise RegistryError(f"{registry_path} has schema version {version}, newer than this latentmap knows"
                            f" ({CURRENT_VERSION}): upgrade latentmap to open it (the file was not touched)")
    if version == CURRENT_VERSION:
        return version
    has_tables = connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] > 0
    if has_tables:
        with sqlite3.connect(backup_path(registry_path, version)) as copy:
            connection.backup(copy)
        copy.close()
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
        for step in MIGRATIONS:
            if step.version > version:
                step.apply(connection, data_dir)
        connection.execute(f"PRAGMA user_version = {CURRENT_VERSION}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return version
