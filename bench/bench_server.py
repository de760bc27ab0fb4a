"""Benchmarks of the server; prints markdown tables.

    .venv/bin/python bench/bench_server.py map       # POST /api/runs → complete map, server vs a bare script
    .venv/bin/python bench/bench_server.py payload   # /points payload for 70,000 points vs JSON lists
    .venv/bin/python bench/bench_server.py           # both

`map`: a fresh `latentmap serve` (uvicorn in a subprocess, 1 worker, real HTTP through httpx) on an
empty data directory; as soon as its worker takes jobs, the clock runs from POST /api/runs (digits,
ae, the method's default epochs): to training done, to the first map (the quick PCA projection)
and until the default projection (UMAP) and clustering (k-means) have succeeded. The bare script
does the default map's work — train, run_projection (UMAP), run_clustering with the same
parameters — in one long-lived process after a warm-up fit.
Repetitions alternate (bare, server, bare, server, ...) so both see the same shared, noisy machine;
the load average is printed with the table.
"""
from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    print(f"\n### {title}\n")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row) + " |")
    sys.stdout.flush()


# ----- map: server vs bare script --------------------------------------------------------------
POLL_SECONDS = 0.2  # the client's polling interval (a page follows jobs by server-sent events instead)


def bare_worker(data_dir: Path, epochs: int | None) -> None:
    """A bare script that does train + UMAP + k-means once per line read on stdin, in one process.

    It warms numba up once first, as the server's worker does, then prints one JSON line of
    timings per repetition.
    """
    from app import catalog
    from ml.analysis.run_analyses import run_clustering, run_projection
    from ml.numba_cache import warm_up
    from ml.datasets import load_dataset
    from ml.training import TrainConfig, train

    warm_up()
    print(json.dumps({"ready": True}), flush=True)
    for repetition, _ in enumerate(sys.stdin):
        started = time.perf_counter()
        dataset = load_dataset("digits")
        config = catalog.train_config("digits", "ae", dataset.image_shape, len(dataset), {"epochs": epochs}, {})
        run_dir = data_dir / "runs" / f"bare{repetition}"
        train(TrainConfig(**config), dataset, run_dir)
        trained = time.perf_counter()
        run_projection(run_dir, "umap", catalog.validate_projection("umap", {}), seed=config["seed"])
        projected = time.perf_counter()
        params = catalog.validate_clustering("kmeans", {"n_clusters": 10})
        run_clustering(run_dir, "kmeans", params, on="embedding", seed=config["seed"])
        done = time.perf_counter()
        print(json.dumps({"train": trained - started, "project": projected - trained, "cluster": done - projected,
                          "total": done - started, "epochs": config["epochs"]}), flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    """A `latentmap serve` subprocess on an empty data directory, driven over real HTTP."""

    def __init__(self, data_dir: Path) -> None:
        import httpx

        port = _free_port()
        self.data_dir = data_dir
        self.log = open(data_dir / "server.log", "wb")
        launched = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        while True:
            try:
                if self.client.get("/api/health").json()["workers_ready"] >= 1:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {(data_dir / 'server.log').read_text()[-2000:]}")
            time.sleep(0.1)
        self.start_to_ready = time.perf_counter() - launched
        self.warm_up = self.client.get("/api/health").json().get("warm_up", "unknown")

    def map_once(self, epochs: int | None) -> dict[str, float]:
        """POST a digits run; seconds from the POST to training done, to the first map (the quick
        PCA projection), and to the complete default map (UMAP and k-means succeeded)."""
        body = {"dataset": "digits", "method": "ae"} | ({"epochs": epochs} if epochs else {})
        started = time.perf_counter()
        created = self.client.post("/api/runs", json=body)
        created.raise_for_status()
        run_id = created.json()["run_id"]
        trained = first_map = None
        while True:
            run = self.client.get(f"/api/runs/{run_id}").json()
            now = time.perf_counter()
            if run["status"] in ("failed", "cancelled"):
                raise RuntimeError(f"run {run_id} {run['status']}: {run['job']}")
            if trained is None and run["status"] == "succeeded":
                trained = now
            if first_map is None and any(item["status"] == "succeeded" for item in run["projections"]):
                first_map = now
            items = run["projections"] + run["clusterings"]
            if any(item["status"] in ("failed", "cancelled") for item in items):
                raise RuntimeError(f"an analysis of {run_id} did not succeed: {items}")
            umap_done = any(item["method"] == "umap" and item["status"] == "succeeded" for item in run["projections"])
            if umap_done and run["clusterings"] and all(item["status"] == "succeeded" for item in items):
                break
            time.sleep(POLL_SECONDS)
        done = time.perf_counter()
        self.client.get(f"/api/runs/{run_id}/points").raise_for_status()
        return {"train": (trained or done) - started, "first_map": (first_map or done) - started,
                "total": done - started, "epochs": run["config"]["epochs"]}

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


def bench_map(epochs: int | None, repeats: int) -> None:
    """Alternate bare and server repetitions so both see the same (shared, noisy) machine."""
    import statistics

    with tempfile.TemporaryDirectory() as bare_dir, tempfile.TemporaryDirectory() as server_dir:
        script = subprocess.Popen([sys.executable, __file__, "bare", "--data-dir", bare_dir]
                                  + (["--epochs", str(epochs)] if epochs else []),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        server = Served(Path(server_dir))
        try:
            assert json.loads(script.stdout.readline())["ready"]
            bare_runs, server_runs = [], []
            for _ in range(repeats):
                script.stdin.write("go\n")
                script.stdin.flush()
                bare_runs.append(json.loads(script.stdout.readline()))
                server_runs.append(server.map_once(epochs))
        finally:
            script.stdin.close()
            script.wait(60)
            server.close()
    rows = []
    for name, runs in (("bare script (one process)", bare_runs), ("server (HTTP + registry + worker)", server_runs)):
        totals = [run["total"] for run in runs]
        first_maps = [f"{run['first_map']:.1f}" if "first_map" in run else "—" for run in runs]
        rows.append([name, ", ".join(f"{run['train']:.1f}" for run in runs), ", ".join(first_maps),
                     ", ".join(f"{t:.1f}" for t in totals), statistics.median(totals)])
    train_ratio = statistics.median(r["train"] for r in server_runs) / statistics.median(r["train"] for r in bare_runs)
    overhead_median = rows[1][4] / rows[0][4] - 1
    overhead_best = min(r["total"] for r in server_runs) / min(r["total"] for r in bare_runs) - 1
    rows[0] += ["—", "—"]
    rows[1] += [f"{train_ratio:.2f}×", f"{overhead_median:+.1%} (best {overhead_best:+.1%})"]
    table(f"POST /api/runs → first map → complete map (digits, ae, {int(bare_runs[0]['epochs'])} epochs, UMAP + k-means),"
          f" {repeats} alternating repetitions, the first on a freshly started server",
          ["path", "trained (s), each", "first map (s), each", "UMAP map complete (s), each", "complete, median (s)",
           "training vs bare", "overhead"], rows)
    print(f"\nThe server was started on an empty data directory; its worker was ready {server.start_to_ready:.1f} s after"
          f" launch (the warm-up process: {server.warm_up}). The bare script's train column is training alone"
          f" (as `latentmap train`); the server's runs from the POST. The client polls GET /api/runs/{{id}} every"
          f" {POLL_SECONDS} s.")


# ----- payload size ----------------------------------------------------------------------------
def bench_payload(n: int) -> None:
    """The real /points endpoint on a synthetic 70,000-point run, vs the same arrays as JSON lists."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.registry import Registry
    from app.settings import Settings
    from ml import artifacts

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as temp:
        data_dir = Path(temp)
        registry = Registry(data_dir / "latentmap.sqlite3").open()
        run_dir = data_dir / "runs" / "rbench"
        labels = rng.integers(0, 10, n).astype(np.int64)
        embedding = (rng.normal(size=(n, 16)) + labels[:, None]).astype(np.float32)
        artifacts.write_npy(run_dir / "embeddings.npy", embedding)
        artifacts.write_npy(run_dir / "labels.npy", labels)
        artifacts.write_npy(run_dir / "projections" / "pbench" / "coords.npy", rng.normal(size=(n, 2)).astype(np.float32) * 10)
        artifacts.write_npy(run_dir / "clusterings" / "cbench" / "labels.npy", rng.integers(-1, 12, n).astype(np.int64))
        from ml.analysis.neighbors import load_or_compute_knn

        load_or_compute_knn(run_dir)  # what the projection job leaves behind (knn_agreement reads it)
        registry.create_run("rbench", "digits", "ae", {"seed": 0}, run_dir)
        registry.update_run("rbench", status="succeeded")
        registry.add_projection("pbench", "rbench", "umap", {}, None, status="succeeded")
        registry.add_clustering("cbench", "rbench", "kmeans", {}, "embedding", None, status="succeeded")
        settings = Settings(data_dir=data_dir, warm_up=False)
        with TestClient(create_app(settings)) as client:
            started = time.perf_counter()
            response = client.get("/api/runs/rbench/points", headers={"Accept-Encoding": "identity"})
            seconds = time.perf_counter() - started
            response.raise_for_status()
            payload = response.content
            wire = client.get("/api/runs/rbench/points", headers={"Accept-Encoding": "gzip"})
            assert wire.headers["content-encoding"] == "gzip"
            wire_bytes = int(wire.headers["content-length"])
        body = json.loads(payload)

        def decode(key: str, dtype: str) -> list:
            return np.frombuffer(base64.b64decode(key), dtype=dtype).tolist()

        as_lists = dict(body, x=decode(body["x"], "<f4"), y=decode(body["y"], "<f4"), label=decode(body["label"], "<i2"),
                        cluster=decode(body["cluster"], "<i4"),
                        values={name: decode(value, "<f4") for name, value in body["values"].items()})
        plain = json.dumps(as_lists).encode()
        coords_typed = len(body["x"]) + len(body["y"])
        coords_plain = len(json.dumps(as_lists["x"])) + len(json.dumps(as_lists["y"]))
        rows = [
            ["whole payload", len(payload), len(plain), f"{len(payload) / len(plain):.3f}",
             len(gzip.compress(payload)), len(gzip.compress(plain))],
            ["x + y only", coords_typed, coords_plain, f"{coords_typed / coords_plain:.3f}", "", ""],
        ]
        table(f"GET /api/runs/{{id}}/points for {n:,} points (x, y, label, cluster, knn_agreement)",
              ["part", "base64 typed arrays (bytes)", "JSON lists (bytes)", "ratio", "gzip typed", "gzip lists"], rows)
        print(f"\nOn the wire (the endpoint gzips when the client accepts it): {wire_bytes:,} bytes = "
              f"{wire_bytes / len(plain):.3f} of the plain JSON lists, {wire_bytes / len(gzip.compress(plain)):.3f} "
              f"of gzipped JSON lists.")
        print(f"\nServed in {seconds * 1000:.0f} ms (first request, knn_agreement computed from the cached graph).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="all", choices=["all", "map", "payload", "bare"])
    parser.add_argument("--epochs", type=int, default=None, help="default: the method's default for digits")
    parser.add_argument("--n", type=int, default=70_000, help="points for the payload benchmark")
    parser.add_argument("--repeats", type=int, default=3, help="alternating bare/server repetitions")
    parser.add_argument("--data-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.what == "bare":
        bare_worker(args.data_dir, args.epochs)
        return
    if args.what in ("all", "payload"):
        bench_payload(args.n)
    if args.what in ("all", "map"):
        bench_map(args.epochs, args.repeats)


if __name__ == "__main__":
    main()
