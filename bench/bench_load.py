"""Load while training: 50 concurrent clients read maps, images, atlas pages and pages of a real server
(127.0.0.1) for a bounded time while a digits training job runs; prints errors and p50/p99 latency per
endpoint as a markdown table, and the server process's resident memory (idle after start, after the
first run, peak under the load; the worker processes apart).

    .venv/bin/python bench/bench_load.py [--clients 50] [--seconds 30] [--epochs 3000]

The server is `latentmap serve` in a subprocess on a temporary data directory (one worker, PCA as the
default map). First a short run is trained (the map that is read), then a long training job is started
and the load begins; the job must still be making progress when the load ends. Clients are asyncio
tasks over httpx, each with its own connection, all in this process (on the same machine as the server).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of process `pid` in MiB: `VmRSS` now, or `VmHWM` (the peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid` (the server's worker processes)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children


def wait(condition, timeout: float, what: str):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise SystemExit(f"bench_load: timed out after {timeout:g} s waiting for {what}")


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "LATENTMAP_WARM_UP": "false", "LATENTMAP_DEFAULT_PROJECTION": "pca", "LATENTMAP_WORKERS": "1"}
    env.pop("LATENTMAP_TOKEN", None)
    log = open(data_dir.parent / "server.log", "wb")  # noqa: SIM115 - kept open for the server's life
    return subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1",
                             "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def prepare(client: httpx.Client, epochs: int) -> dict[str, str]:
    """A finished run with a map and a clustering, then a long training job left running."""
    run_id = client.post("/api/runs", json={"dataset": "digits", "method": "ae", "epochs": 2}).json()["run_id"]

    def complete() -> bool:
        run = client.get(f"/api/runs/{run_id}").json()
        analyses = run["projections"] + run["clusterings"]
        return len(analyses) >= 2 and all(item["status"] == "succeeded" for item in analyses)

    wait(complete, 300, "the map run and its analyses")
    long = client.post("/api/runs", json={"dataset": "digits", "method": "ae", "epochs": epochs}).json()
    wait(lambda: client.get(f"/api/jobs/{long['job_id']}").json()["status"] == "running", 120, "the long job to start")
    return {"run_id": run_id, "job_id": long["job_id"], "long_run": long["run_id"]}


def endpoints(ids: dict[str, str]) -> dict[str, callable]:
    run, job = ids["run_id"], ids["job_id"]
    return {
        "GET /api/runs/{id}/points": lambda: f"/api/runs/{run}/points",
        "GET /api/datasets/digits/images/{i}": lambda: f"/api/datasets/digits/images/{random.randrange(1797)}",
        "GET /api/datasets/digits/atlas": lambda: "/api/datasets/digits/atlas?page=0",
        "GET /api/runs/{id}/neighbors/{i}": lambda: f"/api/runs/{run}/neighbors/{random.randrange(1797)}?k=10",
        "GET /api/runs/{id}": lambda: f"/api/runs/{run}",
        "GET /api/runs": lambda: "/api/runs",
        "GET /api/jobs/{id} (training)": lambda: f"/api/jobs/{job}",
        "GET / (page)": lambda: "/",
        "GET /runs/{id} (page)": lambda: f"/runs/{run}",
    }


async def client_loop(base: str, routes: dict, until: float, latencies: dict, errors: dict, seed: int) -> None:
    rng = random.Random(seed)
    names = list(routes)
    async with httpx.AsyncClient(base_url=base, timeout=30.0, limits=httpx.Limits(max_connections=1)) as client:
        while time.monotonic() < until:
            name = rng.choice(names)
            started = time.perf_counter()
            try:
                response = await client.get(routes[name](), headers={"Accept-Encoding": "gzip"})
                failed = response.status_code >= 400
                await response.aread()
            except httpx.HTTPError as error:
                failed = True
                errors[f"{name}: {type(error).__name__}"] += 1
            latencies[name].append(time.perf_counter() - started)
            if failed:
                errors[name] += 1


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def table(latencies: dict, errors: dict, seconds: float) -> str:
    lines = ["| endpoint | requests | errors | p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|---:|"]
    for name in sorted(latencies):
        values = latencies[name]
        lines.append(f"| `{name}` | {len(values)} | {errors.get(name, 0)} | {1000 * statistics.median(values):.0f} | "
                     f"{1000 * percentile(values, 0.99):.0f} | {1000 * max(values):.0f} |")
    every = [value for values in latencies.values() for value in values]
    total_errors = sum(errors.get(name, 0) for name in latencies)
    lines.append(f"| **all** ({len(every) / seconds:.0f} req/s) | {len(every)} | {total_errors} | "
                 f"{1000 * statistics.median(every):.0f} | {1000 * percentile(every, 0.99):.0f} | {1000 * max(every):.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--epochs", type=int, default=3000, help="of the training job that runs during the load")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="latentmap-bench-load-"))
    port = free_port()
    server = start_server(root / "data", port)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=120.0) as client:
            wait(lambda: server.poll() is None and _answers(client), 120, "the server")
            wait(lambda: client.get("/api/health").json().get("workers_ready", 0) >= 1, 120, "a ready worker")
            rss_started = rss_mib(server.pid)
            ids = prepare(client, args.epochs)
            rss_prepared = rss_mib(server.pid)  # after /api/runs validated, two jobs queued and a map read
            routes = endpoints(ids)
            for path in {make() for make in routes.values()}:  # one warm request each (first torch import, caches)
                client.get(path)
            epoch_before = (client.get(f"/api/jobs/{ids['job_id']}").json()["metrics"] or {}).get("epoch", 0)

            latencies: dict[str, list[float]] = defaultdict(list)
            errors: dict[str, int] = defaultdict(int)
            started = time.monotonic()

            async def run_all() -> None:
                until = time.monotonic() + args.seconds
                await asyncio.gather(*(client_loop(base, routes, until, latencies, errors, seed)
                                       for seed in range(args.clients)))

            asyncio.run(run_all())
            elapsed = time.monotonic() - started
            job = client.get(f"/api/jobs/{ids['job_id']}").json()
            epoch_after = (job["metrics"] or {}).get("epoch", 0)
            rss_after, rss_peak = rss_mib(server.pid), rss_mib(server.pid, "VmHWM")
            workers_peak = [rss_mib(child, "VmHWM") for child in child_pids(server.pid)]
            client.post(f"/api/jobs/{ids['job_id']}/cancel")
        print(f"## Load: {args.clients} clients for {args.seconds:g} s while training (127.0.0.1)\n")
        print(table(latencies, errors, elapsed))
        exceptions = {name: count for name, count in errors.items() if ":" in name and count}
        print(f"\nexceptions: {exceptions or 'none'}")
        print(f"training job {ids['job_id']}: {job['status']}, epoch {epoch_before} → {epoch_after} during the load")
        print(f"server RSS: idle after start {rss_started:.0f} MiB, idle after the first run {rss_prepared:.0f} MiB, "
              f"after the load {rss_after:.0f} MiB, peak {rss_peak:.0f} MiB; worker peak RSS "
              f"{', '.join(f'{value:.0f}' for value in workers_peak) or 'none'} MiB; cpu cores {os.cpu_count()}; "
              f"load average {os.getloadavg()[0]:.1f}")
        ok = job["status"] == "running" and epoch_after > epoch_before and not sum(errors.values())
        return 0 if ok else 1
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/api/health").status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())
