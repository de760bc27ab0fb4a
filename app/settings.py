"""Server and CLI settings (pydantic-settings, `LATENTMAP_` environment variables)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where data lives, how the server listens and how many worker processes run jobs."""

    model_config = SettingsConfigDict(env_prefix="LATENTMAP_", extra="ignore")

    data_dir: Path = Field(default=Path("~/.latentmap"), description="Registry, runs and uploaded datasets.")
    datasets_dir: Path | None = Field(default=None, description="Where fashion-mnist/mnist/cifar10 files are looked for.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64, description="Worker processes running jobs.")
    token: str | None = Field(default=None, description="With a token, every request that changes state needs it"
                              " (Authorization: Bearer TOKEN, or the /login cookie).")
    protect_reads: bool = Field(default=False, description="With a token, reads need it too.")
    allowed_hosts: list[str] | None = Field(
        default=None, description="Host header names the server answers to, against DNS rebinding (JSON list);"
                                  " `latentmap serve` on a loopback address sets 127.0.0.1, localhost and ::1.")
    warm_up: bool = Field(default=True, description="At start, a low-priority process compiles UMAP's numba code into the disk cache.")
    cancel_grace_seconds: float = Field(default=5.0, gt=0, description="Cooperative cancel window before a worker is terminated.")
    upload_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1, description="Largest .zip accepted by POST /api/datasets.")
    upload_max_files: int = Field(default=200_000, ge=1)
    upload_max_image_pixels: int = Field(default=4096 * 4096, ge=1)
    default_projection: str = Field(default="umap", description="Projection queued after every training run.")
    default_clustering: str = Field(default="kmeans", description="Clustering queued after every training run.")
    dataset_cache_size: int = Field(default=4, ge=1, description="Datasets kept loaded in the server process.")
    backend: Literal["local", "ray"] = Field(default="local", description="Who runs the jobs: local worker processes,"
                                             " or a Ray cluster through Ray's Jobs API (`pip install latentmap[ray]`).")
    ray_address: str = Field(default="http://127.0.0.1:8265", description="The Ray cluster's job server (its dashboard address).")
    ray_max_jobs: int = Field(default=2, ge=1, le=1024, description="Ray jobs in flight at once; the rest wait in the registry.")
    ray_cpus_per_job: float = Field(default=1.0, gt=0, description="entrypoint_num_cpus of every Ray job.")
    ray_training_gpus: int = Field(default=0, ge=0, description="entrypoint_num_gpus of training jobs (0: train on CPUs);"
                                                                " training uses the first GPU Ray assigns.")
    ray_python: str = Field(default="python", description="The Python that runs a job on a Ray node (latentmap installed).")

    def model_post_init(self, __context: object) -> None:
        self.data_dir = Path(self.data_dir).expanduser()
        if self.datasets_dir is not None:
            self.datasets_dir = Path(self.datasets_dir).expanduser()

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "latentmap.sqlite3"

    @property
    def runs_dir(self) -> Path:
        return self.data_dir / "runs"

    @property
    def uploads_dir(self) -> Path:
        """Uploaded datasets: one folder per name."""
        return self.data_dir / "datasets"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests override this dependency with their own Settings."""
    return Settings()
