"""What /openapi.json says beyond what FastAPI derives from the routes: the error answers the app
really sends (401/403 from the security layer, both kinds of 422, 400 for unparseable bodies) and
OpenAPI links, which answer's ids feed which request.

A client, or a stateful fuzzer (schemathesis), follows them from one answer into the next
request: POST /api/runs and GET /api/runs (the newest run) → the run's detail and its job;
GET /api/runs/{run_id} → everything scoped to the run: points, neighbours, reconstructions,
augmentations, analyses, comparison and stability of its clustering, timeline, decoder, delete.
Without them a fuzzer only ever guesses ids and every run-scoped operation answers 404.

Each link names its target by (method, path) here and is resolved to FastAPI's operationId when
the schema is built, so renaming a route function cannot leave a dangling link.
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI

Target = tuple[str, str]  # (method, path) of the operation a link leads to
Link = tuple[str, Target, dict[str, Any]]  # (link name, target, {parameter: runtime expression or constant})


def _run_links(run_id: str) -> list[Link]:
    """Every operation scoped to one run, given the expression of its id."""
    run = {"run_id": run_id}
    return [
        _get_run(run_id),
        ("DeleteRun", ("delete", "/api/runs/{run_id}"), run),
        ("ListProjections", ("get", "/api/runs/{run_id}/projections"), run),
        ("CreateProjection", ("post", "/api/runs/{run_id}/projections"), run),
        ("ListClusterings", ("get", "/api/runs/{run_id}/clusterings"), run),
        ("CreateClustering", ("post", "/api/runs/{run_id}/clusterings"), run),
        ("Points", ("get", "/api/runs/{run_id}/points"), run),
        ("NeighborsOfFirstPoint", ("get", "/api/runs/{run_id}/neighbors/{index}"), {**run, "index": 0}),
        ("Reconstructions", ("get", "/api/runs/{run_id}/reconstructions"), run),
        ("AugmentationsOfFirstPoint", ("get", "/api/runs/{run_id}/points/{index}/augmentations"), {**run, "index": 0}),
        ("Timeline", ("get", "/api/runs/{run_id}/timeline"), run),
        ("CreateTimeline", ("post", "/api/runs/{run_id}/timeline"), run),
        ("InterpolateFirstPoints", ("get", "/api/runs/{run_id}/interpolate"), {**run, "a": 0, "b": 1}),
    ]


def _get_run(run_id: str) -> Link:
    return ("GetRun", ("get", "/api/runs/{run_id}"), {"run_id": run_id})


def _job_links(job_id: str) -> list[Link]:
    job = {"job_id": job_id}
    return [
        ("GetJob", ("get", "/api/jobs/{job_id}"), job),
        ("JobEvents", ("get", "/api/jobs/{job_id}/events"), job),
        ("CancelJob", ("post", "/api/jobs/{job_id}/cancel"), job),
        ("ResumeJob", ("post", "/api/jobs/{job_id}/resume"), job),
    ]


def _dataset_links(name: str) -> list[Link]:
    dataset = {"name": name}
    return [
        ("GetDataset", ("get", "/api/datasets/{name}"), dataset),
        ("FirstImage", ("get", "/api/datasets/{name}/images/{index}"), {**dataset, "index": 0}),
        ("Atlas", ("get", "/api/datasets/{name}/atlas"), dataset),
        ("MethodsForDataset", ("get", "/api/methods"), {"dataset": name}),
    ]


def _analysis_links(run_id: str, projection_id: str | None, clustering_id: str | None) -> list[Link]:
    links: list[Link] = []
    if projection_id:
        links.append(("PointsOfProjection", ("get", "/api/runs/{run_id}/points"),
                      {"run_id": run_id, "projection": projection_id}))
    if projection_id:
        links.append(("DecodeMapCentre", ("get", "/api/runs/{run_id}/decode"),
                      {"run_id": run_id, "projection": projection_id, "x": 0, "y": 0}))
    if clustering_id:
        links += [
            ("ClusteringStability", ("post", "/api/runs/{run_id}/clusterings/{clustering_id}/stability"),
             {"run_id": run_id, "clustering_id": clustering_id}),
            ("PointsWithClustering", ("get", "/api/runs/{run_id}/points"), {"run_id": run_id, "clustering": clustering_id}),
            ("CompareClusteringWithItself", ("get", "/api/runs/{run_id}/compare"),
             {"run_id": run_id, "a": clustering_id, "b": clustering_id}),
        ]
    return links


BODY = "$response.body#"
REQUEST_RUN = "$request.path.run_id"

# (method, path, status) of an answer → the links it offers.
LINKS: dict[tuple[str, str, str], list[Link]] = {
    # A listed or new run leads to its detail (and its job); the detail leads everywhere in the run.
    ("post", "/api/runs", "202"): [_get_run(f"{BODY}/run_id")] + _job_links(f"{BODY}/job_id"),
    ("get", "/api/runs", "200"): [_get_run(f"{BODY}/0/id")] + _job_links(f"{BODY}/0/job_id"),
    ("get", "/api/runs/{run_id}", "200"): (
        _run_links(f"{BODY}/id") + _job_links(f"{BODY}/job_id")
        + _analysis_links(f"{BODY}/id", f"{BODY}/projections/0/id", f"{BODY}/clusterings/0/id")),
    # The map's points lead to what a click on a point shows: its neighbours and augmented pairs.
    ("get", "/api/runs/{run_id}/points", "200"): [link for link in _run_links(REQUEST_RUN)
                                                  if link[0] in ("NeighborsOfFirstPoint", "AugmentationsOfFirstPoint")],
    ("get", "/api/runs/{run_id}/projections", "200"): _analysis_links(REQUEST_RUN, f"{BODY}/0/id", None),
    ("get", "/api/runs/{run_id}/clusterings", "200"): _analysis_links(REQUEST_RUN, None, f"{BODY}/0/id"),
    ("post", "/api/runs/{run_id}/projections", "202"): (
        _analysis_links(REQUEST_RUN, f"{BODY}/projection_id", None) + _job_links(f"{BODY}/job_id")),
    ("post", "/api/runs/{run_id}/clusterings", "202"): (
        _analysis_links(REQUEST_RUN, None, f"{BODY}/clustering_id") + _job_links(f"{BODY}/job_id")),
    ("post", "/api/runs/{run_id}/timeline", "202"): (
        [link for link in _run_links(REQUEST_RUN) if link[0] == "Timeline"] + _job_links(f"{BODY}/job_id")),
    ("post", "/api/runs/{run_id}/clusterings/{clustering_id}/stability", "202"): (
        _analysis_links(REQUEST_RUN, None, f"{BODY}/clustering_id") + _job_links(f"{BODY}/job_id")),
    ("get", "/api/datasets", "200"): _dataset_links(f"{BODY}/0/name"),
    ("post", "/api/datasets", "201"): _dataset_links(f"{BODY}/name"),
}


def add_links(schema: dict[str, Any]) -> None:
    """Write LINKS into the `links` of the answers they belong to (in place)."""
    paths = schema.get("paths", {})
    operation_ids = {(method, path): operation["operationId"]
                     for path, operations in paths.items() for method, operation in operations.items()
                     if isinstance(operation, dict) and "operationId" in operation}
    for (method, path, status), links in LINKS.items():
        answer = paths[path][method]["responses"][status]
        answer["links"] = {name: {"operationId": operation_ids[target], "parameters": parameters}
                           for name, target, parameters in links}


def document_answers(app: FastAPI) -> None:
    """Declare the error answers the app really sends, so clients can rely on the schema:
    every 422 is a Message (`detail` is a sentence, from the routes and the error handlers) or FastAPI's
    request validation errors (`detail` is a list of field errors), and an operation with a request
    body answers 400 (Message) when the body cannot be parsed at all (e.g. it is not UTF-8 JSON).

    Found by fuzzing the schema: routes declared 422 as Message only or as the list only while both
    kinds were sent, and the 400 was undeclared. Every API operation may answer 401 (a token is set
    and the request has none) and every one that changes something 403 (a cross-site request), from
    app.security, before any route runs. The answers that hand out ids also carry their LINKS.
    """
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        if "Message" not in components or "HTTPValidationError" not in components:
            return schema
        message = {"$ref": "#/components/schemas/Message"}
        either = {"anyOf": [message, {"$ref": "#/components/schemas/HTTPValidationError"}]}
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                if not isinstance(operation, dict):
                    continue
                answers = operation.setdefault("responses", {})
                if "422" in answers:
                    answers["422"]["content"] = {"application/json": {"schema": either}}
                if "requestBody" in operation and "400" not in answers:
                    answers["400"] = {"description": "The request body cannot be parsed",
                                      "content": {"application/json": {"schema": message}}}
                answers.setdefault("401", {"description": "This server needs its token (LATENTMAP_TOKEN) for this request",
                                           "content": {"application/json": {"schema": message}}})
                if method != "get":
                    answers.setdefault("403", {"description": "A cross-site request: changes are accepted only from"
                                                              " this server's own pages",
                                               "content": {"application/json": {"schema": message}}})
        add_links(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
