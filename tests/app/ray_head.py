"""A real local Ray head for the Ray backend's tests and benchmark: `ray start --head` on free ports
with a short temporary directory, and a stop that ends exactly this head's processes.

Not `ray stop`: that ends every Ray on the machine, including one someone else runs. This head's
processes are found by their command line (its temp directory or its GCS port) and their descendants
(Ray's workers, the job supervisors and the jobs' entrypoints).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from live_server import REPO, child_pids, free_port, process_running

BIN = Path(sys.executable).parent


@dataclass
class RayHead:
    temp_dir: Path
    gcs_port: int
    dashboard_port: int
    start_seconds: float = 0.0

    @property
    def address(self) -> str:
        """The job server's address: LATENTMAP_RAY_ADDRESS."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    @classmethod
    def start(cls, num_cpus: int = 2, num_gpus: int = 1, timeout: float = 120.0,
              dashboard_port: int | None = None) -> "RayHead":
        # Short: Ray's socket paths live under it and a Unix socket path has at most 107 bytes.
        temp_dir = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
        head = cls(temp_dir, free_port(), dashboard_port or free_port())
        command = [str(BIN / "ray"), "start", "--head", "--num-cpus", str(num_cpus), "--num-gpus", str(num_gpus),
                   "--include-dashboard", "true", "--node-ip-address", "127.0.0.1", "--port", str(head.gcs_port),
                   "--dashboard-host", "127.0.0.1", "--dashboard-port", str(head.dashboard_port),
                   "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
                   "--object-store-memory", str(200 * 1024 * 1024), "--temp-dir", str(temp_dir),
                   "--disable-usage-stats"]
        # As on a real node: the environment with latentmap installed comes first on PATH, so the jobs'
        # `python` is that environment's. The repository as working directory: a stray module in the
        # caller's directory (e.g. /tmp/click.py) would shadow a package Ray's dashboard imports.
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "RAY_USAGE_STATS_ENABLED": "0"}
        began = time.monotonic()
        try:
            done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            head.stop()
            raise
        if done.returncode != 0:
            head.stop()
            raise RuntimeError(f"ray start failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        head.start_seconds = time.monotonic() - began
        return head

    def pids(self) -> list[int]:
        """Every process of this head: those naming its temp directory or GCS port, and their descendants."""
        marks = (str(self.temp_dir).encode(), f":{self.gcs_port}".encode())
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != os.getpid():
                try:
                    cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                except OSError:
                    continue
                if any(mark in cmdline for mark in marks):
                    found.append(int(entry))
        queue = list(found)
        while queue:
            for child in child_pids(queue.pop()):
                if child not in found:
                    found.append(child)
                    queue.append(child)
        return found

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL what is left after `grace` seconds; remove the temp directory."""
        pids = self.pids()
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while pids and time.monotonic() < deadline:
                pids = [pid for pid in pids if process_running(pid)]
                time.sleep(0.1)
            if not pids:
                break
            pids = sorted(set(pids) | set(self.pids()))  # and anything started meanwhile
        shutil.rmtree(self.temp_dir, ignore_errors=True)
