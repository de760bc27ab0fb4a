"""Request and response models of the HTTP API (they are the OpenAPI schema at /docs)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ml.snapshots import MAX_SNAPSHOTS

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]


class Message(BaseModel):
    detail: str


class ClusterHealth(BaseModel):
    address: str = Field(description="LATENTMAP_RAY_ADDRESS, the Ray job server.")
    reachable: bool = Field(description="Whether it answered the runner's last call (every 0.5 s).")
    error: str | None = Field(default=None, description="Why not; queued jobs wait in the registry meanwhile.")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    backend: str
    workers: int
    workers_alive: int
    workers_ready: int
    warm_up: Literal["off", "running", "done", "failed"] = Field(
        description="The low-priority process compiling UMAP's code into the disk cache (never inside a worker).")
    cluster: ClusterHealth | None = Field(default=None, description="With LATENTMAP_BACKEND=ray: the Ray cluster.")


# ----- datasets -------------------------------------------------------------------------------
class DatasetSummary(BaseModel):
    name: str
    source: Literal["builtin", "uploaded"]
    available: bool = Field(description="Whether the files are on this machine (or can be downloaded).")
    n: int | None = None
    image_shape: list[int] | None = Field(default=None, description="[C, H, W]")
    has_labels: bool | None = None
    description: str | None = None


class Atlas(BaseModel):
    tile: int
    columns: int
    per_page: int
    pages: int


class DatasetDetail(BaseModel):
    name: str
    n: int
    image_shape: list[int] = Field(description="[C, H, W]")
    has_labels: bool
    class_names: list[str] | None
    atlas: Atlas


class DatasetUploaded(BaseModel):
    name: str
    n: int
    report: dict[str, Any] = Field(description="What the import kept and skipped, and why.")


# ----- jobs -----------------------------------------------------------------------------------
class JobOut(BaseModel):
    id: str
    kind: Literal["train", "project", "cluster", "stability", "timeline", "import", "knn"]
    run_id: str
    target_id: str | None
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    metrics: dict[str, Any] | None = Field(description="Latest progress metrics (epoch, epochs, loss, ...).")
    error: str | None
    cancel_requested: bool
    depends_on: str | None
    created: float
    started: float | None
    finished: float | None


# ----- runs -----------------------------------------------------------------------------------
class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, examples=["digits"])
    method: str = Field(min_length=1, examples=["ae"])
    epochs: int | None = Field(default=None, ge=1, le=10_000, description="Default: the method's default for the dataset.")
    embedding_dim: int | None = Field(default=None, ge=1, le=4096)
    batch_size: int | None = Field(default=None, ge=2, le=65_536)
    lr: float | None = Field(default=None, gt=0, le=10)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    encoder: str | None = Field(default=None, description="auto (by image size), mlp, conv or resnet18")
    snapshots: int | None = Field(default=None, ge=0, le=MAX_SNAPSHOTS, description="embeddings kept at evenly spaced epochs"
                                  " for the timeline (default 8, 0 = none)")
    method_params: dict[str, Any] = Field(default_factory=dict, description="The method's own parameters (see /api/methods).")


class RunCreated(BaseModel):
    run_id: str
    job_id: str


class ClusterStability(BaseModel):
    """How often a clustering's points land with their cluster when it is rerun (POST .../stability)."""

    mean_ari: float = Field(description="mean adjusted Rand index over every pair of repeats")
    repeats: int
    per_cluster: dict[str, float] = Field(description="cluster label (noise: \"-1\") → mean point stability in [0, 1]")


class AnalysisOut(BaseModel):
    """A projection or clustering of a run (`on` for clusterings: `embedding` or a projection id)."""

    id: str
    run_id: str
    method: str
    params: dict[str, Any]
    status: JobStatus
    metrics: dict[str, Any] | None
    job_id: str | None
    created: float
    on: str | None = None
    stability: ClusterStability | None = Field(default=None, description="clusterings whose stability was computed")


class RunSummary(BaseModel):
    id: str
    dataset: str
    method: str
    status: JobStatus
    config: dict[str, Any]
    metrics: dict[str, Any] | None
    created: float
    job_id: str | None


class RunDetail(RunSummary):
    projections: list[AnalysisOut]
    clusterings: list[AnalysisOut]
    history: list[dict[str, Any]]
    job: JobOut | None
    embedding_shape: list[int] | None
    has_reconstructions: bool
    has_decoder: bool = Field(description="an autoencoder, or a contrastive run trained with a reconstruction_weight above 0: "
                                          "the Decoder tab and the decode endpoints work for it")
    trained_with: dict[str, Any] | None = Field(
        default=None, description="what training resolved: encoder, device, precision (float32 or bfloat16), torch_threads")


class ProjectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = Field(examples=["umap"])
    params: dict[str, Any] = Field(default_factory=dict)


class ClusteringCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = Field(examples=["kmeans"])
    params: dict[str, Any] = Field(default_factory=dict)
    on: str = Field(default="embedding", description="`embedding` or the id of one of the run's projections.")


class ProjectionCreated(BaseModel):
    projection_id: str
    job_id: str


class ClusteringCreated(BaseModel):
    clustering_id: str
    job_id: str


class StabilityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repeats: int = Field(default=10, ge=2, le=100, description="reruns, each on a bootstrap sample with a new seed")


# ----- maps -----------------------------------------------------------------------------------
class Category(BaseModel):
    codes: str = Field(description="base64 of little-endian int32, n values: index into names")
    names: list[str]


class Points(BaseModel):
    run_id: str
    dataset: str
    n: int
    projection: AnalysisOut | None
    clustering: AnalysisOut | None
    x: str = Field(description="base64 of little-endian float32, n values")
    y: str = Field(description="base64 of little-endian float32, n values")
    label: str | None = Field(description="base64 of little-endian int16, or null when unlabelled")
    cluster: str | None = Field(description="base64 of little-endian int32 (-1 = noise), or null")
    class_names: list[str] | None
    values: dict[str, str] = Field(description="name → base64 little-endian float32 per-point values")
    categories: dict[str, Category] = Field(default_factory=dict,
                                              description="imported text columns to colour and filter by")


class SearchResult(BaseModel):
    query: str
    total: int = Field(description="how many points match")
    indices: list[int] = Field(description="the matching points, ascending, at most `limit`")


class Neighbor(BaseModel):
    index: int
    distance: float
    label: int | None = None
    cluster: int | None = None


class Neighbors(BaseModel):
    index: int
    neighbors: list[Neighbor]


class AgreementScores(BaseModel):
    ari: float | None
    nmi: float | None
    accuracy: float | None


class VsLabels(BaseModel):
    a: AgreementScores
    b: AgreementScores


class Comparison(BaseModel):
    a: AnalysisOut
    b: AnalysisOut
    ari: float
    nmi: float
    accuracy: float
    contingency: list[list[int]]
    a_ids: list[int]
    b_ids: list[int]
    vs_labels: VsLabels | None


class Reconstructions(BaseModel):
    run_id: str
    indices: list[int]
    originals: list[str] = Field(description="PNG images as data: URLs")
    reconstructions: list[str] = Field(description="PNG images as data: URLs")


# ----- methods --------------------------------------------------------------------------------
class MethodInfo(BaseModel):
    label: str
    params: list[dict[str, Any]]
    defaults: dict[str, Any] | None = None


class Methods(BaseModel):
    training: dict[str, MethodInfo]
    projections: dict[str, MethodInfo]
    clusterings: dict[str, MethodInfo]
