"""schemathesis (CLI) against a live `latentmap serve` that trains while it is fuzzed: the worst
GET /api/health latency meanwhile, and per operation how many requests arrived and what share got
past the 404/422 answers (reached the handler's core).

The server has an uploaded zip dataset, a finished digits run (PCA map, k-means) and a 400-epoch
training job running. `--repo` serves another checkout (e.g. a worktree of the commit before the
OpenAPI links) for a before/after table.

    .venv/bin/python bench/bench_fuzz.py --phases examples,coverage,fuzzing,stateful --max-examples 25
"""
from __future__ import annotations

import argparse
import collections
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parents[1]
ACCESS = re.compile(r'"(GET|POST|DELETE|PUT|PATCH|OPTIONS|HEAD) (\S+) HTTP/1\.[01]" (\d{3})')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(base: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read() or b"null")


def upload_zip(base: str) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        for label in ("shirts", "shoes"):
            for i in range(40):
                png = io.BytesIO()
                Image.fromarray(np.random.default_rng(i).integers(0, 255, (28, 28), dtype=np.uint8)).save(png, "PNG")
                handle.writestr(f"{label}/{i}.png", png.getvalue())
    boundary = "latentmapbench"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nclothes\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clothes.zip\"\r\n"
            "Content-Type: application/zip\r\n\r\n").encode() + archive.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(base + "/api/datasets", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    urllib.request.urlopen(request, timeout=120).read()


def wait_for(predicate, timeout: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.5)


def operation_patterns(schema: dict) -> list[tuple[str, re.Pattern, str]]:
    patterns = []
    for path, operations in schema["paths"].items():
        regex = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
        for method in operations:
            patterns.append((method.upper(), regex, f"{method.upper()} {path}"))
    # Literal paths first, so /api/runs/{id}/points never takes /api/runs/{id}/points/{i}/augmentations
    return sorted(patterns, key=lambda item: -len(item[1].pattern))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=HERE, help="the checkout to serve")
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seconds", type=int, default=900, help="the fuzzer's time limit")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="latentmap-fuzz-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = data_dir.parent / f"{data_dir.name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--data-dir", str(data_dir), "--port", str(port)],
                                  cwd=args.repo, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: _answers(base), 120)
        upload_zip(base)
        seeded = call(base, "/api/runs", {"dataset": "digits", "method": "ae", "epochs": 2})
        wait_for(lambda: call(base, f"/api/jobs/{seeded['job_id']}")["status"] == "succeeded", 300)
        training = call(base, "/api/runs", {"dataset": "digits", "method": "ae", "epochs": 400})
        wait_for(lambda: call(base, f"/api/jobs/{training['job_id']}")["status"] == "running", 300)

        latencies: list[float] = []
        stop = threading.Event()

        def probe() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    urllib.request.urlopen(base + "/api/health", timeout=60).read()
                except OSError:
                    pass
                latencies.append(time.perf_counter() - started)
                time.sleep(0.2)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        started = time.perf_counter()
        fuzz = subprocess.run([str(HERE / ".venv/bin/st"), "run", f"{base}/openapi.json", "--phases", args.phases,
                               "--max-examples", str(args.max_examples), "--workers", "1", "--request-timeout", "10"],
                              capture_output=True, text=True, timeout=args.seconds, cwd=data_dir)
        fuzz_seconds = time.perf_counter() - started
        stop.set()
        prober.join()
        schema = call(base, "/openapi.json")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)

    patterns = operation_patterns(schema)
    sent: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for method, path, status in ACCESS.findall(log_path.read_text(errors="replace")):
        path = path.split("?", 1)[0]
        label = next((label for m, regex, label in patterns if m == method and regex.match(path)), None)
        if label and label != "GET /api/health":
            sent[label][int(status)] += 1
    timeouts = fuzz.stdout.count("Read timed out") + fuzz.stdout.count("Timeout")
    print(f"fuzzer: phases {args.phases}, max-examples {args.max_examples}, {fuzz_seconds:.0f} s, exit {fuzz.returncode},"
          f" timeouts mentioned {timeouts}; load average {os.getloadavg()[0]:.1f}")
    print(f"/api/health while fuzzing: {len(latencies)} probes, worst {max(latencies):.3f} s,"
          f" p99 {np.percentile(latencies, 99):.3f} s, median {np.median(latencies):.3f} s")
    print("\n| operation | requests | past 404/422 | share | 5xx |\n|---|---:|---:|---:|---:|")
    total = reached = 0
    for label in sorted({label for _, _, label in patterns} - {"GET /api/health"}):
        codes = sent.get(label, collections.Counter())
        count = sum(codes.values())
        core = sum(n for code, n in codes.items() if code not in (404, 422))
        errors = sum(n for code, n in codes.items() if code >= 500)
        total, reached = total + count, reached + core
        print(f"| {label} | {count} | {core} | {core / count if count else 0:.0%} | {errors} |")
    print(f"| all | {total} | {reached} | {reached / total if total else 0:.0%} | |")
    failures = [line for line in fuzz.stdout.splitlines() if line.startswith("___")]
    print(f"\nschemathesis reported {len(failures)} failing operations:", *[line.strip("_ ") for line in failures], sep="\n  ")


def _answers(base: str) -> bool:
    try:
        return call(base, "/api/health")["workers_ready"] >= 1
    except OSError:
        return False


if __name__ == "__main__":
    main()
