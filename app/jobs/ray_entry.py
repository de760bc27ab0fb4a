"""The entrypoint of one Ray job: `python -m app.jobs.ray_entry --data-dir DIR JOB_ID`.

The Ray backend (app.jobs.ray) has already marked the job running in the registry; this process runs
it with the same `app.tasks.run_job` a local worker runs, so progress, cancel checks, artifacts and
the final status reach the registry exactly as they do from a local worker. Imports app.tasks and ml,
never FastAPI or Ray.

Exit status: 0 when the job succeeded or was cancelled, 1 when it failed (so Ray's own list says
so too), 2 when the job is not there to run (e.g. cancelled while Ray kept it pending).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence


def gpu_line() -> str:
    """Which GPU Ray assigned to this job (the log's first line). Training uses it when CUDA works there,
    else the CPU, and records which in the run's config.json (device_resolved). Torch is not imported
    for this: a projection or clustering job never loads it."""
    assigned = os.environ.get("CUDA_VISIBLE_DEVICES")
    return f"CUDA_VISIBLE_DEVICES={assigned if assigned is not None else '(unset)'}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.jobs.ray_entry", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the server's data directory (shared storage)")
    parser.add_argument("--datasets-dir", type=Path, default=None)
    parser.add_argument("job_id")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"ray job {os.getpid()}: %(levelname)s %(message)s")
    from app.registry import Registry
    from app.settings import Settings
    from app.tasks import JobContext, run_job

    registry = Registry(Settings(data_dir=args.data_dir).registry_path)
    job = registry.get_job(args.job_id)
    if job is None or job.status != "running":
        print(f"latentmap job {args.job_id}: nothing to run ({job.status if job else 'no such job'})", file=sys.stderr)
        return 2
    print(f"latentmap job {job.id} ({job.kind}, run {job.run_id}): {gpu_line()}", flush=True)
    final = run_job(JobContext(registry=registry, job=job, data_dir=args.data_dir, datasets_dir=args.datasets_dir))
    print(f"latentmap job {job.id}: {final.status}" + (f" ({final.error})" if final.error else ""), flush=True)
    return 1 if final.status == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
