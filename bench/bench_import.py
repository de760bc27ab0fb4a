"""Imports of embeddings computed elsewhere (issue 11); prints markdown tables for BENCHMARKS.md.

    flock /tmp/latentmap-bench.lock .venv/bin/python bench/bench_import.py million   # 1,000,000 × 16 + labels + x/y
    flock /tmp/latentmap-bench.lock .venv/bin/python bench/bench_import.py fmnist    # 70k Fashion-MNIST with images
    flock /tmp/latentmap-bench.lock .venv/bin/python bench/bench_import.py page      # the run page at 1,000,000 points

Each import is `latentmap import FILE --json` in a child process on a fresh data directory: the
seconds are its wall time (reading, checking, landing the run, the import job: scores, x/y as a
projection), peak RSS is the child's (getrusage). The input file is written first and not timed.
`fmnist`: the embedding is PCA-50 of the pixels, x/y its first two components, images as PNG
bytes in a {bytes, path} column (Hugging Face's layout): the map is browsable when the command returns.
`page`: the 1M import served by `latentmap` (bench_dashboard's server and browser measurements) once
its queued k-means has finished: the map drawn on a cold and on warm visits, hover → card latency,
a zoom (relayout) to a quarter of the map, the points payload bytes and the server's peak RSS.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LATENTMAP = Path(sys.executable).parent / "latentmap"


def timed_import(path: Path, data_dir: Path) -> tuple[float, float, dict]:
    """(seconds, peak RSS in MiB of the child, its --json answer)."""
    started = time.perf_counter()
    result = subprocess.run([str(LATENTMAP), "import", str(path), "--json", "--data-dir", str(data_dir)],
                            capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"import failed: {result.stderr.strip()}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak_mib, json.loads(result.stdout.strip().splitlines()[-1])


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    print(f"\n### {title}\n")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; the machine is shared)\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(f"{value:.2f}" if isinstance(value, float) else str(value) for value in row) + " |")
    sys.stdout.flush()


def million(n: int, dim: int, workspace: Path) -> None:
    path = million_file(n, dim, workspace)
    seconds, peak, answer = timed_import(path, workspace / "data")
    table(f"Import of {n:,} × {dim} from Parquet with labels and x/y (target ≤ 120 s)",
          ["points", "file MB", "seconds", "peak RSS MiB", "knn_accuracy (20k sample)", "target met"],
          [[f"{n:,}", round(path.stat().st_size / 1e6, 1), seconds, round(peak), answer["knn_accuracy"],
            "yes" if seconds <= 120 else "no"]])


def million_file(n: int, dim: int, workspace: Path) -> Path:
    """A Parquet file of n × dim points in 20 Gaussian classes, with string labels and x/y."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(20, dim)).astype(np.float32)
    classes = rng.integers(0, 20, size=n)
    embedding = centres[classes] + rng.normal(size=(n, dim)).astype(np.float32)
    path = workspace / "million.parquet"
    pq.write_table(pa.table({
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embedding.reshape(-1)), dim),
        "label": pa.array([f"class {k}" for k in range(20)]).take(pa.array(classes)),
        "x": embedding[:, 0], "y": embedding[:, 1]}), path)
    return path


def page(n: int, dim: int, workspace: Path, hovers: int) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_dashboard import (CHROMIUM, CHROMIUM_ARGS, DRAWN, VIEWPORT, VISIBLE_POINTS, percentile, start_server,
                                 stop_server)
    from playwright.sync_api import sync_playwright

    data_dir = workspace / "data"
    _, _, answer = timed_import(million_file(n, dim, workspace), data_dir)
    process, url = start_server(data_dir)
    try:
        started = time.perf_counter()
        while any(job["status"] in ("queued", "running") for job in _jobs(url, answer["run_id"])):
            time.sleep(2)
        analyses_seconds = time.perf_counter() - started
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport=VIEWPORT)
            tab = context.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.goto(f"{url}/runs/{answer['run_id']}")
            tab.wait_for_function(DRAWN, timeout=600_000)
            cold = tab.evaluate(DRAWN)
            warm = []
            for _ in range(2):
                tab.reload()
                tab.wait_for_function(DRAWN, timeout=600_000)
                warm.append(tab.evaluate(DRAWN))
            payload = tab.evaluate("""() => performance.getEntriesByType('resource')
                .filter(e => e.name.includes('/points')).map(e => e.encodedBodySize).pop() || 0""")
            zoom_ms = tab.evaluate("""async () => {
                const map = window.__latentmap.map, x = map.extent.x, y = map.extent.y;
                const started = performance.now();
                await map.Plotly.relayout(map.container, {"xaxis.range": [x[0], (x[0] + x[1]) / 2],
                                                          "yaxis.range": [y[0], (y[0] + y[1]) / 2]});
                await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
                return performance.now() - started;
            }""")
            tab.evaluate("() => window.__latentmap.map.resetView()")
            tab.evaluate("() => { window.__latentmap.hoverLog.length = 0; }")
            for target in tab.evaluate(VISIBLE_POINTS, hovers):
                tab.mouse.move(target["x"] + 35, target["y"] + 35)
                tab.wait_for_timeout(150)
                tab.mouse.move(target["x"], target["y"])
                tab.wait_for_timeout(150)
            latencies = [entry["latency"] for entry in tab.evaluate("() => window.__latentmap.hoverLog")]
            browser.close()
        if errors:
            raise SystemExit(f"JavaScript errors on the run page: {errors}")
        rss = _peak_rss_mib(process.pid)
    finally:
        stop_server(process)
    p50, p95 = (statistics.median(latencies), percentile(latencies, 95)) if latencies else (None, None)
    table(f"Run page at {n:,} imported points in headless Chromium (software WebGL)",
          ["points", "map drawn cold s", "warm s (median of 2; target ≤ 8)", "hover p50 / p95 ms (target ≤ 100)",
           "hover answers logged", "zoom relayout ms", "points payload MB (gzip)", "server peak RSS MiB (target ≤ 3072)",
           "k-means job s"],
          [[f"{n:,}", cold / 1000, statistics.median(warm) / 1000,
            "—" if p50 is None else f"{p50:.0f} / {p95:.0f}", f"{len(latencies)} ({hovers} points aimed at)", round(zoom_ms),
            round(payload / 1e6, 1), round(rss), round(analyses_seconds)]])


def _jobs(url: str, run_id: str) -> list[dict]:
    import urllib.request

    with urllib.request.urlopen(f"{url}/api/runs/{run_id}", timeout=60) as answer:
        run = json.loads(answer.read())
    return run["projections"] + run["clusterings"]


def _peak_rss_mib(pid: int) -> float:
    """VmHWM of the server process (its worker processes apart), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fmnist(workspace: Path) -> None:
    from PIL import Image
    from sklearn.decomposition import PCA

    from ml.datasets import load_dataset

    dataset = load_dataset("fashion-mnist", download=False)
    pixels = dataset.images.reshape(len(dataset), -1).astype(np.float32) / 255.0
    embedding = PCA(n_components=50, random_state=0).fit_transform(pixels).astype(np.float32)

    def png(image: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0]).save(buffer, format="PNG")
        return buffer.getvalue()

    images = pa.StructArray.from_arrays([pa.array([png(image) for image in dataset.images], pa.binary()),
                                         pa.array([f"{i}.png" for i in range(len(dataset))])], names=["bytes", "path"])
    path = workspace / "fmnist.parquet"
    pq.write_table(pa.table({"embedding": pa.FixedSizeListArray.from_arrays(pa.array(embedding.reshape(-1)), 50),
                             "label": [dataset.class_names[k] for k in dataset.labels], "image": images,
                             "x": embedding[:, 0], "y": embedding[:, 1]}), path)
    seconds, peak, answer = timed_import(path, workspace / "data")
    table("Import of Fashion-MNIST (70,000 × 50, PCA of the pixels) as Parquet with PNG images, labels and x/y:"
          " seconds to a browsable map",
          ["points", "file MB", "seconds to the map", "peak RSS MiB", "knn_accuracy", "has_images"],
          [[f"{answer['n']:,}", round(path.stat().st_size / 1e6, 1), seconds, round(peak), answer["knn_accuracy"],
            answer["has_images"]]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=("million", "fmnist", "page"))
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--hovers", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="latentmap-bench-import-") as workspace:
        if args.case == "million":
            million(args.n, args.dim, Path(workspace))
        elif args.case == "page":
            page(args.n, args.dim, Path(workspace), args.hovers)
        else:
            fmnist(Path(workspace))


if __name__ == "__main__":
    main()
