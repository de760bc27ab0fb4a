"""The server process never imports torch: methods are described and validated from torch-free specs."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SERVER_SESSION = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    settings = Settings(data_dir=Path(sys.argv[1]), workers=1, warm_up=False, default_projection="pca")
    seen = {}
    with TestClient(create_app(settings)) as client:
        seen["methods"] = sorted(client.get("/api/methods").json()["training"])
        seen["digits_defaults"] = client.get("/api/methods", params={"dataset": "digits"}).json()["training"]["ae"]["defaults"]
        refused = client.post("/api/runs", json={"dataset": "digits", "method": "simclr", "method_params": {"temperature": 0}})
        seen["refused"] = [refused.status_code, refused.json()["detail"]]
        accepted = client.post("/api/runs", json={"dataset": "digits", "method": "ae", "epochs": 1, "embedding_dim": 4})
        seen["accepted"] = accepted.status_code
        job_id = accepted.json()["job_id"]
        deadline = time.monotonic() + 240
        while client.get(f"/api/jobs/{job_id}").json()["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
        seen["job"] = client.get(f"/api/jobs/{job_id}").json()["status"]
    seen["torch_imported"] = sorted(name for name in sys.modules if name == "torch" or name.startswith("torch."))[:5]
    print(json.dumps(seen))
    """
)


def test_the_server_process_serves_methods_and_validates_runs_without_torch(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SERVER_SESSION, str(tmp_path / "data")], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"ae", "simclr"} <= set(seen["methods"])
    assert seen["digits_defaults"]["epochs"] == 100
    assert seen["refused"][0] == 422 and seen["refused"][1].startswith("temperature")
    assert seen["accepted"] == 202 and seen["job"] == "succeeded"  # the worker process trained it
    assert seen["torch_imported"] == []
