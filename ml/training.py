"""One training loop for every method: seeded, checkpointed each epoch, resumable, reporting progress.

The whole dataset is kept as one uint8 tensor on the training device and batches are sliced from
it, so there is no DataLoader and no per-image Python work; augmentations (SimCLR) are batched.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml import artifacts, snapshots, ssl_health
from ml.cpu_memory import freed_memory_kept
from ml.datasets.base import ImageDataset
from ml.analysis.decoding import RECONSTRUCTION_ERRORS
from ml.decoder import reconstruction_errors
from ml.evaluation import cosine_knn_accuracy, evaluation_split, knn_accuracy, linear_probe_accuracy
from ml.methods import METHODS, Method
from ml.models.sizing import is_small
from ml.precision import FLOAT32, autocast, choose_precision
from ml.progress import ProgressCallback, report
from ml.train_config import TrainConfig

REPORT_EVERY_STEPS = 10
EMBED_BATCH = 1024
RECONSTRUCTION_SAMPLE = 16
HEALTH_KEYS = ("alignment", "uniformity", "embedding_std", "embedding_std_ratio", "verdict", "monitor_knn_accuracy")
HEALTH_TAIL = 32  # epochs of SSL health each progress report carries (reports are throttled, rows must not be lost)


def resolve_device(name: str) -> torch.device:
    """`auto` → CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def configure_threads(encoder: str = "conv", threads: int | None = None, image_shape: tuple[int, int, int] | None = None) -> int:
    """Set torch's CPU threads and return the count.

    `threads` (a resumed run's count) wins, then LATENTMAP_TORCH_THREADS, then 1 for the small
    MLP of tiny images (`image_shape` at most 16×16 px, or unknown: its matrices are too small to
    split) and every allowed core otherwise. On an idle 2-core CPU two threads train the wide
    28 px MLP 1.7× faster than one (DAE 5,480 vs 3,220 img/s; SimCLR 6,270 vs 3,570). The count
    is a pure function of the run's settings on purpose: some kernels (batch norm, large matrix
    products) sum in a different order on another thread count, so same seed → same embeddings
    needs the same count. On a CPU shared with other busy processes, set
    LATENTMAP_TORCH_THREADS=1: waiting threads spin, and two threads then ran 3× (conv) to 40×
    (MLP) slower than one (the 28 px DAE: 700–960 img/s on two threads next to a test suite,
    against ~4,100 img/s on one thread under similar load).
    """
    if threads is None:
        wanted = os.environ.get("LATENTMAP_TORCH_THREADS")
        if wanted:
            threads = max(1, int(wanted))
        elif encoder == "mlp" and (image_shape is None or is_small(image_shape)):
            threads = 1
        else:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads


def build_optimiser(method: Method, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam over the method's parameters; on CPUs and GPUs its fused kernel, one pass over each
    parameter instead of a dozen small ops (a MoCo step on Fashion-MNIST runs ~100 of them on CPU
    for Adam alone). A resumed run keeps the kind it was saved with: the checkpoint's state says.
    """
    return torch.optim.Adam(method.parameters(), lr=lr, fused=device.type in ("cpu", "cuda") or None)


def optimisation_step(method: Method, optimiser: torch.optim.Optimizer, batch: torch.Tensor, device: torch.device, precision: str) -> torch.Tensor:
    """One batch's loss (under `precision`'s autocast), backward pass and optimiser step; returns the loss.

    The training loop's step, which the step benchmarks (bench/bench_step.py, bench/bench_ab.py) time as it is.
    """
    with autocast(device, precision):
        loss = method.loss(batch)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss


def _rng_state(shuffle: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any], shuffle: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    shuffle.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_batch(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) → float (B, C, H, W) in [0, 1]."""
    return images.float().div_(255.0)


@torch.inference_mode()
def encode(method: Method, images: torch.Tensor) -> np.ndarray:
    """All images (N, C, H, W) uint8 on the method's device → float32 embeddings (N, d), in order."""
    method.eval()
    parts = [method.embed(_as_batch(images[start : start + EMBED_BATCH])).float().cpu() for start in range(0, len(images), EMBED_BATCH)]
    return torch.cat(parts).numpy().astype(np.float32, copy=False)


def _health(method: Method, images: torch.Tensor, monitor: torch.Tensor, labels: np.ndarray | None, seed: int) -> dict[str, Any]:
    """SSL health (ml.ssl_health) of the monitor images (M, C, H, W uint8 indices `monitor`), in eval mode, no grad.

    The views are drawn from a generator forked off the training one and seeded alike every epoch,
    so the curves compare the same views over time and the training itself is not changed by them.
    """
    started = time.perf_counter()
    forked = [torch.cuda.current_device()] if images.device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked), torch.inference_mode():
        torch.manual_seed(seed)
        method.eval()
        batch = _as_batch(images[monitor])
        view_a, view_b = method.views(batch)
        clean, a, b = (method.embed(part).float().cpu().numpy() for part in (batch, view_a, view_b))
    return {**ssl_health.health_row(clean, a, b, labels), "health_seconds": time.perf_counter() - started}


@torch.inference_mode()
def _reconstructions(method: Method, images: torch.Tensor, seed: int) -> dict[str, np.ndarray] | None:
    method.eval()
    count = min(RECONSTRUCTION_SAMPLE, len(images))
    indices = np.sort(np.random.default_rng(seed).choice(len(images), size=count, replace=False))
    originals = images[torch.from_numpy(indices).to(images.device)]
    rebuilt = method.reconstruct(_as_batch(originals))
    if rebuilt is None:
        return None
    to_uint8 = lambda batch: batch.permute(0, 2, 3, 1).cpu().numpy()  # noqa: E731 - (N, H, W, C)
    rebuilt_uint8 = (rebuilt.clamp(0, 1) * 255).round().to(torch.uint8)
    return {"indices": indices.astype(np.int64), "originals": to_uint8(originals), "reconstructions": to_uint8(rebuilt_uint8)}


def _snapshot_knn_accuracy(embeddings: np.ndarray, dataset: ImageDataset, seed: int) -> float | None:
    """kNN accuracy (k = 5) of a snapshot's embedding on the run's evaluation split; None without labels."""
    if dataset.labels is None:
        return None
    train_idx, test_idx = evaluation_split(dataset.labels, dataset.train_mask, seed)
    return knn_accuracy(embeddings[train_idx], dataset.labels[train_idx], embeddings[test_idx], dataset.labels[test_idx], k=5)


def _evaluate(embeddings: np.ndarray, dataset: ImageDataset, seed: int) -> dict[str, Any]:
    if dataset.labels is None:
        return {"knn_accuracy": None, "knn_accuracy_cosine": None, "linear_probe_accuracy": None, "n_eval": 0, "split": None}
    train_idx, test_idx = evaluation_split(dataset.labels, dataset.train_mask, seed)
    parts = (embeddings[train_idx], dataset.labels[train_idx], embeddings[test_idx], dataset.labels[test_idx])
    return {
        "knn_accuracy": knn_accuracy(*parts, k=5),
        "knn_accuracy_cosine": cosine_knn_accuracy(*parts, k=5),
        "linear_probe_accuracy": linear_probe_accuracy(*parts, seed=seed),
        "n_eval": int(len(test_idx)),
        "split": "official" if dataset.train_mask is not None else "stratified-80-20",
    }


def build_method(config: TrainConfig, dataset: ImageDataset, encoder: str | None = None) -> Method:
    """The (untrained) method `config` describes, sized for `dataset`; `encoder` overrides config.encoder."""
    return METHODS[config.method](dataset.image_shape, config.embedding_dim, encoder or config.encoder, dataset.name,
                                  **config.method_params)


def _recorded_encoder(run_dir: Path) -> str | None:
    """The encoder a run was started with (config.json's `encoder_resolved`): a resumed run keeps it
    even when what `auto` picks has changed since (as it did for contrastive grey 28 px images)."""
    path = run_dir / artifacts.CONFIG
    return artifacts.read_json(path).get("encoder_resolved") if path.exists() else None


def train(config: TrainConfig, dataset: ImageDataset, run_dir: Path, progress: ProgressCallback | None = None, resume: bool = False) -> dict[str, Any]:
    """Train `config.method` on `dataset`, writing every artifact of a run into `run_dir`.

    With `resume`, continues from run_dir/checkpoint.pt (if present) to the same result as an
    uninterrupted run. `progress(epoch, step, metrics)` is called every few steps and after each
    epoch's checkpoint; when it returns True, `ml.progress.Stopped` is raised and checkpoint.pt
    holds the last finished epoch. Returns the metrics.json content.
    """
    with freed_memory_kept():  # each step reuses the last one's pages (ml/cpu_memory.py)
        return _train(config, dataset, run_dir, progress, resume)


def _train(config: TrainConfig, dataset: ImageDataset, run_dir: Path, progress: ProgressCallback | None, resume: bool) -> dict[str, Any]:
    config = config.validated()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    shuffle = torch.Generator().manual_seed(config.seed)
    checkpoint_path = run_dir / artifacts.CHECKPOINT
    resuming = resume and checkpoint_path.exists()
    method = build_method(config, dataset, _recorded_encoder(run_dir) if resuming else None).to(device)
    encoder_name = getattr(method, "encoder_name", config.encoder)
    checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=True) if resuming else None
    threads = configure_threads(encoder_name, checkpoint.get("torch_threads") if checkpoint else None, dataset.image_shape) if device.type == "cpu" else None
    # A checkpoint from before precisions were recorded was trained in float32.
    precision = choose_precision(config.method, device, checkpoint.get("precision", FLOAT32) if checkpoint else None)
    optimiser = build_optimiser(method, config.lr, device)

    images = torch.from_numpy(dataset.images).permute(0, 3, 1, 2).contiguous().to(device)  # (N, C, H, W) uint8
    train_idx = torch.from_numpy(np.flatnonzero(dataset.train_mask) if dataset.train_mask is not None else np.arange(len(dataset)))
    n_train = len(train_idx)
    batch_size = min(config.batch_size, n_train)
    steps_per_epoch = n_train // batch_size  # the last partial batch is dropped (batch statistics need > 1 image)
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total_steps)

    artifacts.write_json(
        run_dir / artifacts.CONFIG,
        {**config.to_dict(), "encoder_resolved": encoder_name, "device_resolved": str(device), "torch_threads": threads,
         "precision": precision, "dataset_info": {"name": dataset.name, "n": len(dataset), "image_shape": list(dataset.image_shape), "has_labels": dataset.has_labels, "n_train": n_train}},
    )

    monitor, monitor_labels = None, None
    if config.method in ssl_health.CONTRASTIVE_METHODS:
        chosen = ssl_health.monitor_indices(len(dataset), train_idx.numpy(), config.seed)
        monitor = torch.from_numpy(chosen).to(device)
        monitor_labels = dataset.labels[chosen] if dataset.labels is not None else None

    if not resuming:
        snapshots.clear_snapshots(run_dir)
    snapshot_epochs = snapshots.snapshot_epochs(config.epochs, config.snapshots)
    history: list[dict[str, Any]] = []
    start_epoch, train_seconds = 0, 0.0
    if checkpoint is not None:
        if _without_snapshots(checkpoint["config"]) != _without_snapshots(config.to_dict()):
            raise ValueError(f"{checkpoint_path} was written by another configuration; cannot resume from it")
        method.load_state_dict(checkpoint["model"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        _restore_rng(checkpoint["rng"], shuffle)
        history, start_epoch, train_seconds = checkpoint["history"], checkpoint["epoch"], checkpoint["train_seconds"]

    session_start, session_steps = time.perf_counter(), 0
    for epoch in range(start_epoch, config.epochs):
        method.train()
        epoch_start = time.perf_counter()
        order = train_idx[torch.randperm(n_train, generator=shuffle)].to(device)
        loss_sum = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            batch = _as_batch(images[order[step * batch_size : (step + 1) * batch_size]])
            loss = optimisation_step(method, optimiser, batch, device, precision)
            scheduler.step()
            method.after_step(epoch * steps_per_epoch + step + 1, total_steps)  # EMA networks (MoCo, BYOL)
            loss_sum += loss.detach()
            session_steps += 1
            if (step + 1) % REPORT_EVERY_STEPS == 0 and step + 1 < steps_per_epoch:
                done = epoch * steps_per_epoch + step + 1
                report(progress, epoch + 1, step + 1, _progress_metrics(config, done, total_steps, float(loss_sum) / (step + 1), session_steps, session_start, batch_size, history))
        epoch_seconds = time.perf_counter() - epoch_start
        train_seconds += epoch_seconds
        history.append({"epoch": epoch + 1, "loss": float(loss_sum) / steps_per_epoch, "seconds": epoch_seconds, "images_per_second": steps_per_epoch * batch_size / epoch_seconds})
        if monitor is not None:  # outside the epoch's seconds: the health costs three small forward passes
            history[-1].update(_health(method, images, monitor, monitor_labels, config.seed))
        if epoch + 1 in snapshot_epochs and epoch + 1 < config.epochs:  # the last one is the final embedding
            # Before the checkpoint: a process ended in between repeats the epoch and rewrites the same
            # snapshot. Eval-mode forward passes without gradients draw no random numbers, so the
            # training itself is unchanged by them.
            embedded = encode(method, images)
            snapshots.write_snapshot(run_dir, epoch + 1, embedded, _snapshot_knn_accuracy(embedded, dataset, config.seed))
        artifacts.write_torch(
            checkpoint_path,
            {"model": method.state_dict(), "optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict(),
             "rng": _rng_state(shuffle), "history": history, "epoch": epoch + 1, "train_seconds": train_seconds, "config": config.to_dict(), "torch_threads": threads,
             "precision": precision},
        )
        done = (epoch + 1) * steps_per_epoch
        report(progress, epoch + 1, steps_per_epoch, _progress_metrics(config, done, total_steps, history[-1]["loss"], session_steps, session_start, batch_size, history))

    return _finish(config, method, dataset, images, run_dir, history, train_seconds, n_train, batch_size * steps_per_epoch * config.epochs)


def _without_snapshots(config: dict[str, Any]) -> dict[str, Any]:
    """A config without `snapshots`, which does not change the training: a run may resume with another count."""
    return {key: value for key, value in config.items() if key != "snapshots"}


def _progress_metrics(config: TrainConfig, done: int, total: int, loss: float, session_steps: int, session_start: float, batch_size: int,
                      history: list[dict[str, Any]]) -> dict[str, Any]:
    elapsed = max(time.perf_counter() - session_start, 1e-9)
    steps_per_second = session_steps / elapsed
    steps_per_epoch = total // config.epochs
    metrics: dict[str, Any] = {
        "fraction": done / total,
        "epoch": (done - 1) // steps_per_epoch + 1,
        "epochs": config.epochs,
        "loss": loss,
        "images_per_second": steps_per_second * batch_size,
        "eta_seconds": (total - done) / steps_per_second,
    }
    # The last epochs' SSL health rows, so that a listener that missed a (throttled) report still gets every epoch.
    health = [{key: row[key] for key in ("epoch", "loss", *HEALTH_KEYS) if key in row} for row in history[-HEALTH_TAIL:] if "verdict" in row]
    if health:
        metrics["health"] = health
    return metrics


def _finish(config: TrainConfig, method: Method, dataset: ImageDataset, images: torch.Tensor, run_dir: Path,
            history: list[dict[str, Any]], train_seconds: float, n_train: int, images_seen: int) -> dict[str, Any]:
    """Embed every image, evaluate, and write the final artifacts."""
    embeddings = encode(method, images)
    artifacts.write_torch(run_dir / artifacts.MODEL, method.state_dict())
    artifacts.write_npy(run_dir / artifacts.EMBEDDINGS, embeddings)
    if dataset.labels is not None:
        artifacts.write_npy(run_dir / artifacts.LABELS, dataset.labels.astype(np.int64))
    sample = _reconstructions(method, images, config.seed)
    if sample is not None:
        artifacts.write_npz(run_dir / artifacts.RECONSTRUCTIONS, **sample)
        artifacts.write_npy(run_dir / RECONSTRUCTION_ERRORS, reconstruction_errors(method, images))
    artifacts.write_json(run_dir / artifacts.HISTORY, history)
    evaluation = _evaluate(embeddings, dataset, config.seed)
    if config.snapshots > 0:
        snapshots.write_snapshot(run_dir, config.epochs, embeddings, evaluation["knn_accuracy"])
    metrics = {
        "final_loss": history[-1]["loss"],
        "train_seconds": train_seconds,
        "images_per_second": images_seen / train_seconds if train_seconds > 0 else None,
        "n_train": n_train,
        "epochs": config.epochs,
        **evaluation,
    }
    if "verdict" in history[-1]:
        dim = embeddings.shape[1]
        metrics["ssl_health"] = {**{key: history[-1][key] for key in HEALTH_KEYS}, "uniform_sphere_std": ssl_health.uniform_sphere_std(dim),
                                 "uniform_sphere_uniformity": ssl_health.uniform_sphere_uniformity(dim)}
    artifacts.write_json(run_dir / artifacts.METRICS, metrics)
    return metrics
