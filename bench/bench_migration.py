"""Migration time of a 0.1.0 registry with 1,000 runs whose run directories were written under
another path (the data directory was moved): every path is re-rooted under the new one.

    .venv/bin/python bench/bench_migration.py --runs 1000 --repeats 3
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import migrations  # noqa: E402
from app.registry import Registry  # noqa: E402


def old_data_dir(n_runs: int) -> Path:
    """A data directory as 0.1.0 left it under /srv/old/latentmap, copied to a temporary path."""
    data_dir = Path(tempfile.mkdtemp(prefix="latentmap-migration-"))
    with sqlite3.connect(data_dir / "latentmap.sqlite3") as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(migrations.SCHEMA_0_1_0)
        connection.executemany(
            "INSERT INTO runs (id, dataset, method, config, status, created, run_dir)"
            " VALUES (?, 'digits', 'ae', '{}', 'succeeded', 0, ?)",
            [(f"r{i}", f"/srv/old/latentmap/runs/r{i}") for i in range(n_runs)])
        connection.executemany(
            "INSERT INTO jobs (id, kind, run_id, params, status, created) VALUES (?, 'train', ?, '{}', 'succeeded', 0)",
            [(f"j{i}", f"r{i}") for i in range(n_runs)])
    connection.close()
    for i in range(n_runs):
        (data_dir / "runs" / f"r{i}").mkdir(parents=True)
    return data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"| repeat | runs | migrate + open (ms) | re-rooted | load |\n|---|---:|---:|---:|---:|")
    for repeat in range(1, args.repeats + 1):
        data_dir = old_data_dir(args.runs)
        started = time.perf_counter()
        registry = Registry(data_dir / "latentmap.sqlite3").open()
        seconds = time.perf_counter() - started
        rerooted = sum(Path(run.run_dir).parent == data_dir / "runs" for run in registry.list_runs())
        print(f"| {repeat} | {args.runs:,} | {seconds * 1000:.0f} | {rerooted:,} | {os.getloadavg()[0]:.1f} |")


if __name__ == "__main__":
    main()
