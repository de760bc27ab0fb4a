"""Schema versions and migrations: a 0.1.0 data directory moved to a new path opens, migrates and
serves its run; a failed step changes nothing; a newer or corrupt file is refused in one line."""
from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import migrations
from app.cli import main
from app.migrations import CURRENT_VERSION, RegistryError, reroot
from app.registry import Registry

TABLES = ("datasets", "runs", "jobs", "projections", "clusterings")


def _write_0_1_0_registry(source: Path, target: Path, old_data_dir: Path) -> None:
    """Rewrite `source`'s rows into a file as latentmap 0.1.0 wrote it: its tables, no schema version,
    and every run directory as an absolute path under `old_data_dir`."""
    with sqlite3.connect(target) as old:
        old.execute("PRAGMA journal_mode=WAL")  # as 0.1.0 left its file
        old.executescript(migrations.SCHEMA_0_1_0)
        with sqlite3.connect(source) as current:
            for table in TABLES:
                cursor = current.execute(f"SELECT * FROM {table}")
                columns = [column[0] for column in cursor.description]
                for row in cursor.fetchall():
                    values = dict(zip(columns, row))
                    if table == "runs":
                        values["run_dir"] = str(old_data_dir / "runs" / values["id"])
                    marks = ", ".join("?" for _ in values)
                    old.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({marks})", tuple(values.values()))
        assert old.execute("PRAGMA user_version").fetchone()[0] == 0
    old.close()


@pytest.fixture
def moved_0_1_0_data_dir(tiny_run, tmp_path: Path) -> Path:
    """tiny_run's data directory as 0.1.0 left it at /srv/old/latentmap, copied to a new path."""
    moved = tmp_path / "mounted" / "data"
    shutil.copytree(tiny_run.data_dir, moved, ignore=shutil.ignore_patterns("latentmap.sqlite3*"))
    _write_0_1_0_registry(tiny_run.data_dir / "latentmap.sqlite3", moved / "latentmap.sqlite3",
                          Path("/srv/old/latentmap"))
    return moved


def test_a_moved_0_1_0_data_dir_migrates_and_serves_its_run(moved_0_1_0_data_dir: Path, tiny_run,
                                                            settings_factory) -> None:
    from app.main import create_app

    with TestClient(create_app(settings_factory(moved_0_1_0_data_dir))) as client:
        answer = client.get(f"/api/runs/{tiny_run.run_id}/points", params={"projection": tiny_run.projection_id})
        assert answer.status_code == 200, answer.text
        assert client.get(f"/api/runs/{tiny_run.run_id}").json()["status"] == "succeeded"
    registry_path = moved_0_1_0_data_dir / "latentmap.sqlite3"
    with sqlite3.connect(registry_path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == CURRENT_VERSION
        stored = connection.execute("SELECT run_dir FROM runs WHERE id = ?", (tiny_run.run_id,)).fetchone()[0]
    assert stored == f"runs/{tiny_run.run_id}"
    backup = registry_path.with_name("latentmap.sqlite3.bak-v0")
    with sqlite3.connect(backup) as copy:  # the file as it was before the migration
        assert copy.execute("PRAGMA user_version").fetchone()[0] == 0
        assert copy.execute("SELECT run_dir FROM runs").fetchone()[0].startswith("/srv/old/latentmap/")


def test_new_rows_are_stored_relative_so_the_whole_directory_can_move(tiny_run, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    shutil.copytree(tiny_run.data_dir, moved)
    run = Registry(moved / "latentmap.sqlite3").open().get_run(tiny_run.run_id)
    assert Path(run.run_dir) == moved / "runs" / tiny_run.run_id
    assert (Path(run.run_dir) / "embeddings.npy").exists()


def test_a_step_that_fails_half_way_leaves_the_file_as_it_was(moved_0_1_0_data_dir: Path, monkeypatch) -> None:
    registry_path = moved_0_1_0_data_dir / "latentmap.sqlite3"
    before = hashlib.sha256(registry_path.read_bytes()).hexdigest()
    with sqlite3.connect(registry_path) as connection:
        statuses = sorted(row[0] for row in connection.execute("SELECT status FROM runs"))
    connection.close()

    def half_then_fail(connection: sqlite3.Connection, data_dir: Path) -> None:
        connection.execute("UPDATE runs SET status = 'damaged'")
        raise RuntimeError("step 3 broke")

    broken = migrations.Migration(CURRENT_VERSION + 1, "a broken step", half_then_fail)
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, broken))
    monkeypatch.setattr(migrations, "CURRENT_VERSION", CURRENT_VERSION + 1)
    with pytest.raises(RuntimeError, match="step 3 broke"):
        Registry(registry_path).open()
    with sqlite3.connect(registry_path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 0
        assert sorted(row[0] for row in connection.execute("SELECT status FROM runs")) == statuses
        assert connection.execute("SELECT run_dir FROM runs").fetchone()[0].startswith("/srv/old/")
    connection.close()
    assert hashlib.sha256(registry_path.read_bytes()).hexdigest() == before


def test_a_file_from_a_newer_latentmap_is_refused_untouched(tmp_path: Path, capsys) -> None:
    registry_path = tmp_path / "latentmap.sqlite3"
    Registry(registry_path).open()
    with sqlite3.connect(registry_path) as connection:
        connection.execute(f"PRAGMA user_version = {CURRENT_VERSION + 5}")
    connection.close()
    before = registry_path.read_bytes()
    with pytest.raises(RegistryError, match=f"schema version {CURRENT_VERSION + 5}, newer"):
        Registry(registry_path).open()
    assert registry_path.read_bytes() == before
    assert main(["runs", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "upgrade latentmap" in err


def test_a_corrupt_file_stops_the_server_in_one_line_naming_the_backup(tmp_path: Path, capsys) -> None:
    registry_path = tmp_path / "latentmap.sqlite3"
    Registry(registry_path).open()
    backup = tmp_path / "latentmap.sqlite3.bak-v1"
    shutil.copy(registry_path, backup)
    registry_path.write_bytes(b"this is not a database, it was truncated" * 100)
    before = registry_path.read_bytes()
    assert main(["serve", "--data-dir", str(tmp_path), "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(registry_path) in err and str(backup) in err and "nothing was changed" in err
    assert registry_path.read_bytes() == before


def test_a_data_dir_that_cannot_be_created_is_one_line(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["runs", "--data-dir", str(blocker / "data")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot create or write the data directory" in err


def test_reroot_keeps_the_tail_that_exists_under_the_new_data_dir(tmp_path: Path) -> None:
    (tmp_path / "runs" / "r_1").mkdir(parents=True)
    assert reroot("/srv/old/latentmap/runs/r_1", tmp_path) == "runs/r_1"
    assert reroot(str(tmp_path / "runs" / "r_1"), tmp_path) == "runs/r_1"
    assert reroot("runs/r_2", tmp_path) == "runs/r_2"  # already relative
    assert reroot("/srv/old/latentmap/runs/r_9", tmp_path) == "/srv/old/latentmap/runs/r_9"  # nowhere here


def test_1000_runs_migrate_re_rooting_only_what_exists(tmp_path: Path) -> None:
    registry_path = tmp_path / "latentmap.sqlite3"
    with sqlite3.connect(registry_path) as connection:
        connection.executescript(migrations.SCHEMA_0_1_0)
        connection.executemany(
            "INSERT INTO runs (id, dataset, method, config, status, created, run_dir) VALUES (?, 'digits', 'ae', '{}',"
            " 'succeeded', 0, ?)", [(f"r{i}", f"/srv/old/runs/r{i}") for i in range(1000)])
    connection.close()
    for i in range(0, 1000, 2):
        (tmp_path / "runs" / f"r{i}").mkdir(parents=True)
    registry = Registry(registry_path).open()
    runs = {run.id: run.run_dir for run in registry.list_runs()}
    assert runs["r0"] == str(tmp_path / "runs" / "r0")  # re-rooted
    assert runs["r1"] == "/srv/old/runs/r1"  # no such directory here: kept as it was
