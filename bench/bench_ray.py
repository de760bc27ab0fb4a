"""The Ray backend against the local one on this machine: Ray head start-up, and POST /api/runs → the
complete map (training, then the PCA preview, k-means and UMAP) with each backend, same run.

    flock /tmp/latentmap-bench.lock .venv/bin/python bench/bench_ray.py [--repeats 2] [--epochs N]

A real local Ray head (`ray start --head --num-cpus 2 --num-gpus 1`, the GPU declared, not real: the
training runs on the CPU) and a real `latentmap serve` per backend, each on a fresh data directory,
with the product's defaults otherwise (the local runner: 1 worker and the numba warm-up; the Ray
runner: up to 2 Ray jobs at once, 1 CPU each, the training asking for the GPU). The backends take
turns (local, ray, local, ray, ...) so that the machine's load falls on both alike.
Prints markdown tables: per backend, seconds from the POST to the training job's end and to the
last analysis's end (median and every repeat); each job's seconds from its start to its end; and the
Ray/local ratio of the complete-map medians.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "app"))

from live_server import LiveServer, job_of, wait_run_complete  # noqa: E402
from ray_head import RayHead  # noqa: E402


def one_map(server: LiveServer, epochs: int) -> tuple[float, float, dict[str, float]]:
    """Seconds from POST /api/runs to the training job's end and to the last of its analyses' end, and
    each job's seconds from its start (a local worker claiming it; the Ray runner claiming it, just
    before it submits the Ray job) to its end, by method."""
    began = time.time()
    response = server.client.post("/api/runs", json={"dataset": "digits", "method": "ae", "epochs": epochs, "seed": 0})
    assert response.status_code == 202, response.text
    run = wait_run_complete(server, response.json()["run_id"], timeout=1800)
    analyses = run["projections"] + run["clusterings"]
    jobs = [job_of(server, run["job_id"])] + [job_of(server, a["job_id"]) for a in analyses]
    assert all(job["status"] == "succeeded" for job in jobs), jobs
    spans = {method: job["finished"] - job["started"] for method, job in zip(["ae"] + [a["method"] for a in analyses], jobs)}
    return jobs[0]["finished"] - began, max(job["finished"] for job in jobs) - began, spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    head = RayHead.start(num_cpus=2, num_gpus=1)
    print(f"ray start --head: {head.start_seconds:.1f} s", flush=True)
    product = {"LATENTMAP_DEFAULT_PROJECTION": "umap", "LATENTMAP_WARM_UP": "true", "LATENTMAP_CANCEL_GRACE_SECONDS": "5"}
    backends = {"local": {**product, "LATENTMAP_BACKEND": "local"},
                "ray": {**product, "LATENTMAP_BACKEND": "ray", "LATENTMAP_RAY_ADDRESS": head.address,
                        "LATENTMAP_RAY_TRAINING_GPUS": "1"}}
    times: dict[str, list[tuple[float, float, dict[str, float]]]] = {name: [] for name in backends}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ray-") as scratch:
            for repeat in range(args.repeats):
                for name, env in backends.items():
                    server = LiveServer(Path(scratch) / f"{name}-{repeat}" / "data", **env)
                    (server.data_dir.parent).mkdir(parents=True)
                    server.start()
                    try:
                        time.sleep(3.0)  # past the start-up work (dataset preload, the local warm-up's first seconds)
                        times[name].append(one_map(server, args.epochs))
                    finally:
                        server.stop()
                    print(f"{name} #{repeat + 1}: training {times[name][-1][0]:.1f} s, map {times[name][-1][1]:.1f} s",
                          flush=True)
    finally:
        head.stop()
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print(f"digits (1,797 images), ae, {args.epochs} epochs, default map (PCA preview, k-means, UMAP); seconds from POST")
    print("| backend | training done (median) | complete map (median) | every repeat (map) |")
    print("|---|---|---|---|")
    for name, rows in times.items():
        print(f"| {name} | {statistics.median(r[0] for r in rows):.1f} | {statistics.median(r[1] for r in rows):.1f} |"
              f" {', '.join(f'{r[1]:.1f}' for r in rows)} |")
    methods = list(times["local"][0][2])
    print(f"\neach job, start to end (median seconds): {', '.join(methods)}")
    print("| backend | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for name, rows in times.items():
        print(f"| {name} | " + " | ".join(f"{statistics.median(r[2][m] for r in rows):.1f}" for m in methods) + " |")
    ratio = statistics.median(r[1] for r in times["ray"]) / statistics.median(r[1] for r in times["local"])
    print(f"\nray / local, complete map: {ratio:.2f}x (target <= 1.5x: {'reached' if ratio <= 1.5 else 'not reached'})")


if __name__ == "__main__":
    main()
