"""The epoch timeline: aligned frames move less than independently computed ones, on a real tiny run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.analysis import timeline
from ml.analysis.timeline import NoSnapshots, load_timeline, mean_displacement, run_timeline, tsne_frames
from ml.datasets import ImageDataset
from ml.snapshots import list_snapshots, load_snapshot
from ml.training import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread", "short_tsne")


@pytest.fixture
def short_tsne(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer t-SNE iterations than the job's (500 / 250): quick, and the frames still settle on 480 points."""
    monkeypatch.setattr(timeline, "FIRST_FRAME_ITER", 200)
    monkeypatch.setattr(timeline, "NEXT_FRAME_ITER", 100)


@pytest.fixture(scope="module")
def run_dir(small_digits: ImageDataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("timeline-run")
    config = TrainConfig("digits", "ae", epochs=6, embedding_dim=8, batch_size=32, lr=3e-3, seed=0, snapshots=3)
    train(config, small_digits, folder)
    return folder


def test_aligned_tsne_frames_move_less_than_independent_ones(run_dir: Path) -> None:
    summary = run_timeline(run_dir, "tsne", timeline_id="t1")
    stored = load_timeline(run_dir, "t1")
    assert stored is not None and stored["method"] == "tsne"
    assert stored["epochs"].tolist() == [2, 4, 6] and stored["coords"].shape == (3, 480, 2)
    assert stored["coords"].dtype == np.float32 and np.isfinite(stored["coords"]).all()
    assert stored["knn_accuracy"].tolist() == [row["knn_accuracy"] for row in list_snapshots(run_dir)]
    independent = tsne_frames([load_snapshot(run_dir, epoch) for epoch in (2, 4, 6)], aligned=False)
    aligned = mean_displacement(list(stored["coords"]))
    assert aligned == pytest.approx(summary["displacement"])
    assert aligned < 0.85 * mean_displacement(independent)  # 0.229 against 0.328 when this was written


def test_a_new_timeline_replaces_the_old_one(run_dir: Path) -> None:
    run_timeline(run_dir, "tsne", timeline_id="t2")
    assert load_timeline(run_dir, "t2") is not None and load_timeline(run_dir, "t1") is None


def test_a_run_without_snapshots_or_a_bad_method_is_refused(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(NoSnapshots, match="train with snapshots >= 2"):
        run_timeline(tmp_path, "tsne")
    with pytest.raises(ValueError, match="method must be one of tsne, umap"):
        run_timeline(run_dir, "pca")


def test_mean_displacement_ignores_scale_and_shift() -> None:
    frame = np.random.default_rng(0).normal(size=(50, 2))
    assert mean_displacement([frame, 3 * frame + 7]) == pytest.approx(0.0, abs=1e-12)
    assert mean_displacement([frame, -frame]) > 1.0
