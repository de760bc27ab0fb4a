"""A new user's first *Train*, in a real browser: fresh data directory, fresh `latentmap serve`,
the home page's form with its defaults (digits, autoencoder), then a second click on the same server.

    .venv/bin/python bench/bench_first_click.py [--wait-ready] [--clicks 2]

Prints, per click, seconds from the click to: training done (the job's finish time), the first map
drawn (the quick PCA map) and the UMAP map drawn on the run page, with the job timeline. Without
`--wait-ready` the first click comes one second after the home page appears, as an eager person's
would, even if the worker is still starting; with it, once /api/health says the worker is ready.
Needs Debian's chromium at /usr/bin/chromium.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
DRAWN = "(method) => (window.__latentmap && window.__latentmap.drawnMethods || []).includes(method)"


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def click_train(page, url: str, wait_ready: bool) -> dict:
    page.goto(url + "/")
    page.wait_for_selector("#train-submit")
    if wait_ready:
        while get(url + "/api/health")["workers_ready"] < 1:
            time.sleep(0.1)
    else:
        time.sleep(1.0)
    health = get(url + "/api/health")
    clicked, clicked_wall = time.perf_counter(), time.time()
    page.click("#train-submit")
    page.wait_for_url("**/runs/**", timeout=60_000)
    run_id = page.url.split("/runs/")[1].split("?")[0]
    page.wait_for_function("() => (window.__latentmap.drawnMethods || []).length > 0", timeout=300_000, polling=50)
    first = time.perf_counter() - clicked
    page.wait_for_function(DRAWN, arg="umap", timeout=300_000, polling=50)
    umap = time.perf_counter() - clicked
    run = get(f"{url}/api/runs/{run_id}")
    jobs = [("train", get(f"{url}/api/jobs/{run['job_id']}"))]
    jobs += [(item["method"], get(f"{url}/api/jobs/{item['job_id']}")) for item in run["projections"] + run["clusterings"]]
    timeline = ", ".join(f"{name} {job['started'] - clicked_wall:.1f}→{job['finished'] - clicked_wall:.1f}" for name, job in jobs)
    return {"worker ready at click": health["workers_ready"] >= 1, "warm-up at click": health["warm_up"],
            "trained": jobs[0][1]["finished"] - clicked_wall, "first map": first, "UMAP map": umap,
            "drawn": page.evaluate("window.__latentmap.drawnMethods"), "jobs": timeline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait-ready", action="store_true")
    parser.add_argument("--clicks", type=int, default=2)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "LATENTMAP_DATA_DIR": data_dir}
        launched = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=REPO, env=env,
                                  stdout=open(Path(data_dir) / "serve.log", "wb"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            while True:
                try:
                    get(url + "/api/health")
                    break
                except OSError:
                    time.sleep(0.1)
            answered = time.perf_counter() - launched
            rows = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1366, "height": 768})
                for _ in range(args.clicks):
                    rows.append(click_train(page, url, args.wait_ready))
                browser.close()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    print(f"\n(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; the server answered "
          f"{answered:.1f} s after launch; first click {'once the worker was ready' if args.wait_ready else '1 s after the home page appeared'})\n")
    print("| click | worker ready / warm-up at click | trained (s) | first map drawn (s) | UMAP map drawn (s) | jobs (s after the click) |")
    print("|---|---|---:|---:|---:|---|")
    for number, row in enumerate(rows, 1):
        print(f"| {number} | {'yes' if row['worker ready at click'] else 'no'} / {row['warm-up at click']} | {row['trained']:.1f} | "
              f"{row['first map']:.1f} | {row['UMAP map']:.1f} | {row['jobs']} |")


if __name__ == "__main__":
    main()
