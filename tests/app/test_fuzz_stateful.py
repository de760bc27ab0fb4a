"""Stateful fuzzing through the OpenAPI links (schemathesis's state machine, in-process over ASGI):
sequences such as POST /api/runs → GET its job → GET its points, or GET /api/runs/{id} → compare its
clusterings, with hostile values wherever the links leave a parameter free.

The data directory is seeded with real finished runs so that every operation can answer 2xx: an
autoencoder run with a PCA map and a k-means clustering, a SimCLR run (the augmentation inspector),
a spare run to delete and an interrupted training job to resume. Every other call is aimed at these
ids; the rest follow the links or are generated. No call may get a 5xx (but the inspector's 503 with
Retry-After: ask again) or take over CALL_LIMIT_SECONDS, and every answer must match the schema.
Every linked operation must answer 2xx at least once: the walks reach most of them (the counts are
printed); a closing sweep asks the few a run's random walks missed once each, with seeded ids.
"""
from __future__ import annotations

import collections
import io
import itertools
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis.errors import Flaky
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from app.inspector import INSPECTOR
from app.main import create_app
from app.settings import Settings

SCENARIOS = int(os.environ.get("LATENTMAP_FUZZ_SCENARIOS", "80"))
CALL_LIMIT_SECONDS = 10.0
DATA_DIR = Path(tempfile.mkdtemp(prefix="latentmap-stateful-"))
app = create_app(Settings(data_dir=DATA_DIR, warm_up=False, workers=1, default_projection="pca",
                          cancel_grace_seconds=1.0, upload_max_bytes=2 * 1024 * 1024))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
SEEDS: dict[str, str] = {}
ANSWERS: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
SLOW: list[str] = []
_turn = itertools.count()


def _seed(run_trainer) -> None:  # noqa: ANN001 - the session fixture from tests/conftest.py
    from app.registry import Registry

    ae = run_trainer(DATA_DIR, method="ae", epochs=2)  # two epoch snapshots: a timeline can be asked for
    simclr = run_trainer(DATA_DIR, method="simclr", epochs=1, analyses=False)
    interrupted = run_trainer(DATA_DIR, method="ae", epochs=1, analyses=False, seed=2)
    spare = run_trainer(DATA_DIR, method="ae", epochs=1, analyses=False, seed=3)
    registry = Registry(DATA_DIR / "latentmap.sqlite3").open()
    registry.finish_job(interrupted.job_id, "interrupted", "seeded for the stateful fuzz", only_if_running=False)
    SEEDS.update(run=ae.run_id, job=ae.job_id, projection=ae.projection_id, clustering=ae.clustering_id,
                 simclr=simclr.run_id, interrupted_job=interrupted.job_id, spare=spare.run_id)


@pytest.fixture(scope="module", autouse=True)
def running_app(run_trainer):
    _seed(run_trainer)
    with TestClient(app) as client:
        _start_inspector(client)
        yield client
        for job in client.app.state.registry.list_jobs(statuses=("queued", "running")):
            try:
                client.app.state.registry.request_cancel(job.id)
            except (LookupError, ValueError):
                pass
    INSPECTOR.close()
    shutil.rmtree(DATA_DIR, ignore_errors=True)


def _start_inspector(client: TestClient) -> None:
    """Ask for the SimCLR run's point 3 until it is drawn, as the page does: the inspector's first
    answer starts its process (a 503 with Retry-After meanwhile, exercised in test_augmentations)."""
    for _ in range(120):
        answer = client.get(f"/api/runs/{SEEDS['simclr']}/points/3/augmentations")
        if answer.status_code != 503:
            assert answer.status_code == 200, answer.text
            return
        time.sleep(float(answer.headers["Retry-After"]))


def _seeded_run_for(path: str, method: str) -> str:
    if path.endswith("/reconstructions"):
        return SEEDS["run"]
    if path.endswith("/augmentations"):
        return SEEDS["simclr"]
    if method == "DELETE":
        return SEEDS["spare"]
    return SEEDS["run"]


def _zip_of_one_class() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(4):
            png = io.BytesIO()
            Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(png, format="PNG")
            archive.writestr(f"squares/{i}.png", png.getvalue())
    return buffer.getvalue()


# Bodies that the operation accepts (2xx), used on aimed turns: a 1-epoch digits run, a PCA map,
# a k-means clustering, a tiny image folder under a new name.
VALID_BODIES: dict[tuple[str, str], Callable[[], Any]] = {
    ("POST", "/api/runs"): lambda: {"dataset": "digits", "method": "ae", "epochs": 1, "embedding_dim": 4},
    ("POST", "/api/runs/{run_id}/projections"): lambda: {"method": "pca", "params": {}},
    ("POST", "/api/runs/{run_id}/clusterings"): lambda: {"method": "kmeans", "params": {"n_clusters": 3}, "on": "embedding"},
    ("POST", "/api/datasets"): lambda: {"file": _zip_of_one_class(), "name": f"fuzz{next(_turn)}"},
    ("POST", "/api/runs/{run_id}/timeline"): lambda: {"method": "tsne"},
    ("POST", "/api/runs/{run_id}/clusterings/{clustering_id}/stability"): lambda: {"repeats": 2},
}
# Queries that the operation answers with 2xx on the seeded autoencoder run (PCA maps are centred on 0).
VALID_QUERIES: dict[str, Callable[[], dict[str, Any]]] = {
    "/api/runs/{run_id}/compare": lambda: {"a": SEEDS["clustering"], "b": SEEDS["clustering"]},
    "/api/runs/{run_id}/decode": lambda: {"projection": SEEDS["projection"], "x": 0, "y": 0},
    "/api/runs/{run_id}/interpolate": lambda: {"a": 0, "b": 1},
}


def _aim(case: schemathesis.Case) -> None:
    """A finished job's event stream always (a running one's streams until the job ends); every
    other call, the seeded ids and a valid body that let the operation answer 2xx."""
    path, method = case.operation.path, case.operation.method.upper()
    parameters = case.path_parameters or {}
    if path.endswith("/events"):
        parameters["job_id"] = SEEDS["job"]
        return
    if next(_turn) % 2:
        return
    if (method, path) in VALID_BODIES:
        case.body = VALID_BODIES[method, path]()
    if "run_id" in parameters:
        parameters["run_id"] = _seeded_run_for(path, method)
    if "job_id" in parameters:
        parameters["job_id"] = SEEDS["interrupted_job"] if path.endswith(("/resume", "/cancel")) else SEEDS["job"]
    if "name" in parameters:
        parameters["name"] = "digits"
    if "index" in parameters:
        parameters["index"] = 3
    if "clustering_id" in parameters:
        parameters["clustering_id"] = SEEDS["clustering"]
    if path in VALID_QUERIES:
        case.query = {**(case.query or {}), **VALID_QUERIES[path]()}
        return
    for name, seed in (("projection", "projection"), ("clustering", "clustering"), ("a", "clustering"), ("b", "clustering")):
        if case.query and name in case.query:
            case.query[name] = SEEDS[seed]


class LinkedCalls(schema.as_state_machine()):  # type: ignore[misc]
    scenarios = 0

    def setup(self) -> None:
        LinkedCalls.scenarios += 1

    def before_call(self, case: schemathesis.Case) -> None:
        _aim(case)

    def call(self, case: schemathesis.Case, **kwargs):  # noqa: ANN003, ANN201
        started = time.perf_counter()
        response = case.call(**kwargs)
        seconds = time.perf_counter() - started
        ANSWERS[case.operation.label][response.status_code] += 1
        if seconds > CALL_LIMIT_SECONDS:
            SLOW.append(f"{case.operation.label}: {seconds:.1f} s")
        return response

    def validate_response(self, response, case: schemathesis.Case, **kwargs) -> None:  # noqa: ANN001, ANN003
        # The one 5xx allowed: the augmentation inspector's "ask again" (503 + Retry-After) while its
        # answer is drawn; the operation must still answer 200 at some point (checked at the end).
        asked_again = response.status_code == 503 and "retry-after" in {name.lower() for name in response.headers}
        assert response.status_code < 500 or asked_again, \
            f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:500]}"
        checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
        case.validate_response(response, checks=checks if asked_again else [not_a_server_error, *checks])


def _linked_operations() -> set[str]:
    """Every operation a link leads from or to (GET /api/health is in none: it needs no id)."""
    from app.openapi import LINKS

    labels = {f"{method.upper()} {path}" for method, path, _ in LINKS}
    return labels | {f"{method.upper()} {path}" for links in LINKS.values() for _, (method, path), _ in links}


def _valid_request(client: TestClient, label: str) -> tuple[str, str, dict[str, Any]]:
    """A request that `label`'s operation answers with 2xx, on the seeded data."""
    run, clustering = SEEDS["run"], SEEDS["clustering"]
    if label == "POST /api/jobs/{job_id}/cancel":  # needs a job still queued or running
        created = client.post("/api/runs", json=VALID_BODIES["POST", "/api/runs"]()).json()
        return "POST", f"/api/jobs/{created['job_id']}/cancel", {}
    if label == "POST /api/datasets":
        body = VALID_BODIES["POST", "/api/datasets"]()
        return "POST", "/api/datasets", {"files": {"file": ("images.zip", body["file"])}, "data": {"name": body["name"]}}
    if label == "GET /api/runs/{run_id}/timeline":  # answers 404 until a timeline was asked for
        client.post(f"/api/runs/{run}/timeline", json=VALID_BODIES["POST", "/api/runs/{run_id}/timeline"]())
    path = label.split(" ", 1)[1].format(run_id=run, job_id=SEEDS["job"], name="digits", index=3, clustering_id=clustering)
    method = label.split(" ", 1)[0]
    if method == "DELETE":
        path = f"/api/runs/{SEEDS['spare']}"
    if label.endswith("/resume"):
        path = f"/api/jobs/{SEEDS['interrupted_job']}/resume"
    if label.endswith("/augmentations"):
        path = path.replace(run, SEEDS["simclr"])
    query = VALID_QUERIES[label.split(" ", 1)[1]]() if label.split(" ", 1)[1] in VALID_QUERIES else {}
    body = VALID_BODIES.get((method, label.split(" ", 1)[1]))
    return method, path, {"params": query, **({"json": body()} if body else {})}


def test_linked_sequences_never_fail_and_reach_every_operation(running_app: TestClient) -> None:
    # The server's state moves on between scenarios (jobs finish, runs are deleted), so Hypothesis
    # may find that replaying a prefix no longer offers the same transitions (Flaky): that ends one
    # exploration, not the test; a new one continues until the budget of scenarios is spent.
    for _ in range(5):
        if LinkedCalls.scenarios >= SCENARIOS:
            break
        try:
            LinkedCalls.run(settings=settings(max_examples=SCENARIOS - LinkedCalls.scenarios, stateful_step_count=8,
                                              deadline=None, database=None, suppress_health_check=list(HealthCheck)))
        except Flaky:
            continue
    print(f"\nstateful fuzz, {LinkedCalls.scenarios} scenarios:",
          {label: dict(codes) for label, codes in sorted(ANSWERS.items())})
    assert SLOW == []
    # Random walks may miss an operation's 2xx; a closing sweep asks each such operation once with
    # seeded ids and a valid body, so that every one is shown to answer 2xx in this run.
    missed = sorted(label for label in _linked_operations() if not any(200 <= code < 300 for code in ANSWERS[label]))
    print(f"answered 2xx only in the closing sweep: {missed}")
    client = running_app
    for label in missed:
        method, path, arguments = _valid_request(client, label)
        answer = client.request(method, path, **arguments)
        assert 200 <= answer.status_code < 300, f"{label}: {answer.status_code} {answer.text[:300]}"
