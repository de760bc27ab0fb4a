"""MoCo and BYOL on the shared contrastive base: the queue, the losses against hand-written
references, the EMA update and schedule against closed forms, no gradients into the momentum
networks, refusals of bad parameters, and stop + resume bit-identical."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from ml import artifacts
from ml.datasets import ImageDataset, load_dataset
from ml.losses import info_nce_loss, negative_cosine_loss
from ml.methods import METHOD_SPECS, METHODS
from ml.methods.contrastive import ContrastiveMethod
from ml.models.ema import cosine_momentum, ema_update, momentum_copy
from ml.models.queue import KeyQueue
from ml.params import ParamError
from ml.progress import Stopped
from ml.training import TrainConfig, train


pytestmark = pytest.mark.usefixtures("one_thread")


# ----- the queue ------------------------------------------------------------------------------
def test_the_queue_replaces_its_oldest_keys_first_in_order() -> None:
    torch.manual_seed(0)
    queue = KeyQueue(size=5, dim=2)
    assert queue.keys.shape == (5, 2) and torch.allclose(queue.keys.norm(dim=1), torch.ones(5))
    key = lambda value: torch.full((1, 2), float(value))  # noqa: E731 - row `value`, easy to follow
    queue.enqueue(torch.cat([key(1), key(2), key(3)]))
    assert queue.keys[:3, 0].tolist() == [1, 2, 3] and int(queue.pointer) == 3
    before = queue.negatives()
    queue.enqueue(torch.cat([key(4), key(5), key(6)]))  # 6 wraps round onto the oldest (1)
    assert queue.keys[:, 0].tolist() == [6, 2, 3, 4, 5] and int(queue.pointer) == 1
    assert before[:3, 0].tolist() == [1, 2, 3]  # negatives() was a copy
    queue.enqueue(torch.cat([key(value) for value in range(7, 14)]))  # 7 keys into 5 slots: the last 5 stay
    assert queue.keys[:, 0].tolist() == [13, 9, 10, 11, 12] and int(queue.pointer) == 1  # 9, the oldest, goes next
    assert {"keys", "pointer"} <= set(queue.state_dict())  # so checkpoints hold it


# ----- losses against references --------------------------------------------------------------
def reference_info_nce(queries: torch.Tensor, keys: torch.Tensor, negatives: torch.Tensor, temperature: float) -> float:
    """MoCo's loss written out query by query (He et al. 2020, eq. 1), averaged over the batch."""
    unit = lambda v: v / v.norm()  # noqa: E731
    total = 0.0
    for query, key in zip(queries, keys):
        q = unit(query)
        positive = math.exp(float(q @ unit(key)) / temperature)
        denominator = positive + sum(math.exp(float(q @ unit(negative)) / temperature) for negative in negatives)
        total += -math.log(positive / denominator)
    return total / len(queries)


@pytest.mark.parametrize("temperature", [0.07, 0.2, 1.0])
def test_info_nce_matches_the_reference_loop(temperature: float) -> None:
    generator = torch.Generator().manual_seed(0)
    queries, keys, negatives = (torch.randn(n, 5, generator=generator, dtype=torch.float64) for n in (6, 6, 11))
    expected = reference_info_nce(queries, keys, negatives, temperature)
    assert info_nce_loss(queries, keys, negatives, temperature).item() == pytest.approx(expected, rel=1e-12)


def cross_entropy_info_nce(queries: torch.Tensor, keys: torch.Tensor, negatives: torch.Tensor, temperature: float) -> torch.Tensor:
    """The same loss through autograd's own cross-entropy, positive in column 0."""
    queries = torch.nn.functional.normalize(queries, dim=1) / temperature
    keys, negatives = torch.nn.functional.normalize(keys, dim=1), torch.nn.functional.normalize(negatives, dim=1)
    logits = torch.cat([(queries * keys).sum(dim=1, keepdim=True), queries @ negatives.T], dim=1)
    return torch.nn.functional.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))


@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_info_nce_gradients_match_autograds_cross_entropy(temperature: float) -> None:
    """The hand-written backward pass gives what autograd gives, for queries, keys and negatives alike,
    and `gradcheck` agrees with finite differences; logits of 20 and more (τ = 0.05) stay finite."""
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(n, 5, generator=generator, dtype=torch.float64, requires_grad=True) for n in (6, 6, 11)]
    ours = torch.autograd.grad(info_nce_loss(*inputs, temperature), inputs)
    expected = torch.autograd.grad(cross_entropy_info_nce(*inputs, temperature), inputs)
    for got, want in zip(ours, expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda *tensors: info_nce_loss(*tensors, temperature), inputs)
    queries = inputs[0].detach().requires_grad_()  # keys and the queue without gradients, as in MoCo
    assert torch.autograd.grad(info_nce_loss(queries, inputs[1].detach(), inputs[2].detach(), temperature), queries)[0].shape == (6, 5)


def test_info_nce_is_low_when_each_key_stands_out_and_refuses_bad_shapes() -> None:
    queries = torch.eye(4) * 3
    assert info_nce_loss(queries, queries, -torch.eye(4), 0.05).item() < 1e-3
    with pytest.raises(ValueError):
        info_nce_loss(torch.zeros(3, 2), torch.zeros(4, 2), torch.zeros(5, 2))
    with pytest.raises(ValueError):
        info_nce_loss(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(5, 3))


def test_negative_cosine_loss_is_the_normalised_mse() -> None:
    generator = torch.Generator().manual_seed(1)
    p, z = torch.randn(5, 4, generator=generator, dtype=torch.float64), torch.randn(5, 4, generator=generator, dtype=torch.float64)
    expected = np.mean([float(((a / a.norm() - b / b.norm()) ** 2).sum()) for a, b in zip(p, z)])
    assert negative_cosine_loss(p, z).item() == pytest.approx(expected, rel=1e-12)
    x = torch.tensor([[1.0, 0.0]])
    assert negative_cosine_loss(2 * x, x).item() == pytest.approx(0.0, abs=1e-7)
    assert negative_cosine_loss(-x, x).item() == pytest.approx(4.0)
    assert negative_cosine_loss(torch.tensor([[0.0, 1.0]]), x).item() == pytest.approx(2.0)


# ----- EMA ------------------------------------------------------------------------------------
def test_ema_update_and_the_cosine_schedule_match_their_closed_forms() -> None:
    torch.manual_seed(0)
    online = torch.nn.Linear(3, 2).double()
    target = momentum_copy(online)
    assert all(not p.requires_grad for p in target.parameters())
    start = [p.detach().clone() for p in target.parameters()]
    with torch.no_grad():
        for parameter in online.parameters():
            parameter.add_(1.0)
    ema_update(target, online, 0.9)
    for before, now, current in zip(start, target.parameters(), online.parameters()):
        assert torch.allclose(now, 0.9 * before + 0.1 * current, rtol=0, atol=1e-14)
    # τ_k = 1 − (1 − τ_base)(cos(πk/K) + 1)/2 (Grill et al. 2020, §3.2)
    assert cosine_momentum(0.99, 0, 100) == pytest.approx(0.99)
    assert cosine_momentum(0.99, 50, 100) == pytest.approx(0.995)
    assert cosine_momentum(0.99, 25, 100) == pytest.approx(1 - 0.01 * (math.cos(math.pi / 4) + 1) / 2)
    assert cosine_momentum(0.99, 100, 100) == pytest.approx(1.0)


def test_byol_moves_its_target_with_the_scheduled_momentum_and_moco_with_a_constant_one() -> None:
    torch.manual_seed(0)
    byol, moco = METHODS["byol"]((1, 8, 8), 4, momentum=0.9), METHODS["moco"]((1, 8, 8), 4, momentum=0.9, queue_size=64)
    assert byol.momentum_at(3, 12) == pytest.approx(cosine_momentum(0.9, 3, 12)) and moco.momentum_at(3, 12) == 0.9
    with torch.no_grad():
        for parameter in byol.encoder.parameters():
            parameter.mul_(2.0)  # online and target now differ
    target_before = [p.clone() for p in byol.momentum_encoder.parameters()]
    byol.after_step(3, 12)
    tau = 1 - 0.1 * (math.cos(math.pi * 3 / 12) + 1) / 2
    for before, now, online in zip(target_before, byol.momentum_encoder.parameters(), byol.encoder.parameters()):
        assert torch.allclose(now, tau * before + (1 - tau) * online, atol=1e-6)


# ----- gradients ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["moco", "byol"])
def test_the_key_or_target_networks_get_no_gradients(name: str) -> None:
    torch.manual_seed(0)
    method = METHODS[name]((1, 8, 8), 4, **({"queue_size": 64} if name == "moco" else {}))
    assert isinstance(method, ContrastiveMethod)
    method.train()
    method.loss(torch.rand(16, 1, 8, 8)).backward()
    momentum = [(key, p) for key, p in method.named_parameters() if key.startswith("momentum_")]
    online = [(key, p) for key, p in method.named_parameters() if not key.startswith("momentum_")]
    assert momentum and {key.split(".")[0] for key, _ in momentum} == {"momentum_encoder", "momentum_head"}
    assert all(p.grad is None and not p.requires_grad for _, p in momentum)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for _, p in online)
    assert method.embed(torch.rand(3, 1, 8, 8)).shape == (3, 4)  # the encoder output, before any head


# ----- the decoder -----------------------------------------------------------------------------
def test_the_loss_adds_the_weighted_reconstruction_of_each_image_from_its_first_view() -> None:
    images = torch.rand(6, 1, 8, 8)
    method = METHODS["simclr"]((1, 8, 8), 4, reconstruction_weight=7.0)
    torch.manual_seed(0)
    loss = method.loss(images)
    torch.manual_seed(0)  # the same views again
    views = method.two_views(images)
    features = method.encoder(views)
    expected = method.contrastive_loss(views, features) + 7.0 * F.mse_loss(method.decoder(features[:6]), images)
    assert torch.allclose(loss, expected)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in method.decoder.parameters())
    without = METHODS["simclr"]((1, 8, 8), 4, reconstruction_weight=0)
    assert without.decoder is None and not any(key.startswith("decoder.") for key in without.state_dict())


def test_a_model_saved_without_a_decoder_loads_without_one() -> None:
    saved = METHODS["moco"]((1, 8, 8), 4, reconstruction_weight=0).state_dict()  # as runs trained before the decoder
    method = METHODS["moco"]((1, 8, 8), 4)
    assert method.decoder is not None
    method.load_state_dict(saved)
    assert method.decoder is None and method.reconstruct(torch.rand(2, 1, 8, 8)) is None
    assert torch.equal(method.encoder.state_dict()["net.1.weight"], saved["encoder.net.1.weight"])
    assert torch.isfinite(method.loss(torch.rand(8, 1, 8, 8)))


# ----- parameters -----------------------------------------------------------------------------
def test_specs_declare_the_parameters_and_refuse_out_of_range_values() -> None:
    assert [spec["name"] for spec in METHOD_SPECS["moco"].describe()["params"]] == ["temperature", "queue_size", "momentum", "augmentation_strength",
                                                                                  "reconstruction_weight"]
    assert [spec["name"] for spec in METHOD_SPECS["byol"].describe()["params"]] == ["momentum", "predictor_hidden", "augmentation_strength",
                                                                                  "reconstruction_weight"]
    assert METHOD_SPECS["moco"].validate({"queue_size": 256}, 256)["queue_size"] == 256
    assert METHOD_SPECS["byol"].validate({"momentum": 0.0}, 256)["momentum"] == 0.0
    for name, params, batch, field in [
        ("moco", {"queue_size": 255}, 256, "queue_size"),
        ("moco", {"momentum": 1.0}, 32, "momentum"),
        ("moco", {"momentum": -0.1}, 32, "momentum"),
        ("moco", {"temperature": 0}, 32, "temperature"),
        ("moco", {"temperature": -1}, 32, "temperature"),
        ("byol", {"momentum": 1.0}, 32, "momentum"),
        ("byol", {"momentum": 1.5}, 32, "momentum"),
        ("byol", {"predictor_hidden": 0}, 32, "predictor_hidden"),
        ("byol", {"queue_size": 64}, 32, "queue_size"),  # not a BYOL parameter
        ("simclr", {"reconstruction_weight": -1}, 32, "reconstruction_weight"),
    ]:
        with pytest.raises(ParamError) as refused:
            METHOD_SPECS[name].validate(params, batch)
        assert field in str(refused.value), (name, params, str(refused.value))
    with pytest.raises(ParamError, match="queue_size"):
        TrainConfig(dataset="digits", method="moco", epochs=1, embedding_dim=4, batch_size=128, lr=1e-3, seed=0,
                    method_params={"queue_size": 64}).validated()


# ----- training -------------------------------------------------------------------------------
def moco_or_byol(name: str, **changes) -> TrainConfig:
    params = {"queue_size": 96} if name == "moco" else {}
    values = {"dataset": "digits", "method": name, "epochs": 3, "embedding_dim": 8, "batch_size": 32, "lr": 3e-3, "seed": 0,
              "method_params": params, **changes}
    return TrainConfig(**values)


@pytest.mark.parametrize("name", ["moco", "byol"])
def test_stop_and_resume_is_bit_identical_to_an_uninterrupted_run(name: str, small_digits: ImageDataset, tmp_path: Path) -> None:
    run = moco_or_byol(name)
    train(run, small_digits, tmp_path / "whole")
    with pytest.raises(Stopped):
        train(run, small_digits, tmp_path / "parted", progress=lambda epoch, step, metrics: epoch == 2 and step == 10)
    checkpoint = torch.load(tmp_path / "parted" / artifacts.CHECKPOINT, weights_only=True)
    assert checkpoint["epoch"] == 1
    assert any(key.startswith("momentum_encoder.") for key in checkpoint["model"])  # the key / target network
    if name == "moco":
        assert checkpoint["model"]["queue.keys"].shape == (96, 64) and int(checkpoint["model"]["queue.pointer"]) == (15 * 64) % 96
    train(run, small_digits, tmp_path / "parted", resume=True)
    assert np.array_equal(np.load(tmp_path / "parted" / artifacts.EMBEDDINGS), np.load(tmp_path / "whole" / artifacts.EMBEDDINGS))
    whole_state = torch.load(tmp_path / "whole" / artifacts.MODEL, weights_only=True)
    parted_state = torch.load(tmp_path / "parted" / artifacts.MODEL, weights_only=True)
    assert whole_state.keys() == parted_state.keys()
    assert all(torch.equal(whole_state[key], parted_state[key]) for key in whole_state)  # target/key networks and queue too
    history = lambda run_dir: [row["loss"] for row in json.loads((run_dir / artifacts.HISTORY).read_text())]  # noqa: E731
    assert history(tmp_path / "parted") == history(tmp_path / "whole")


@pytest.mark.parametrize("name", ["moco", "byol"])
def test_both_train_on_digits_with_falling_loss(name: str, tmp_path: Path) -> None:
    digits = load_dataset("digits")
    params = {"queue_size": 256} if name == "moco" else {}  # two batches of keys: full after the first step
    config = TrainConfig(dataset="digits", method=name, epochs=5, embedding_dim=16, batch_size=128, lr=2e-3, seed=0, method_params=params)
    metrics = train(config, digits, tmp_path)
    losses = [row["loss"] for row in json.loads((tmp_path / artifacts.HISTORY).read_text())]
    assert losses[-1] < losses[1] < losses[0], losses
    assert metrics["knn_accuracy"] > 0.85  # far above chance (0.1) after 5 short epochs


def test_a_resumed_run_keeps_the_encoder_it_started_with(small_digits, tmp_path, monkeypatch) -> None:
    """What `auto` picks for grey 28 px images changed once (MLP → conv net for simclr/moco): a run
    stopped before the change resumes on the encoder its checkpoint holds, to the same result."""
    # 96 digits padded to 28 × 28 grey: `auto` picks the method's grey_28_encoder.
    images = np.pad(np.repeat(np.repeat(small_digits.images[:96], 3, axis=1), 3, axis=2), ((0, 0), (2, 2), (2, 2), (0, 0)))
    grey_28 = ImageDataset(name="digits-28", images=images, labels=small_digits.labels[:96], class_names=small_digits.class_names)
    run = TrainConfig(dataset="digits-28", method="simclr", epochs=2, embedding_dim=8, batch_size=32, lr=3e-3, seed=0, snapshots=0)
    assert METHODS["simclr"].spec.grey_28_encoder == "conv"
    train(run, grey_28, tmp_path / "whole")
    with pytest.raises(Stopped):
        train(run, grey_28, tmp_path / "parted", progress=lambda epoch, step, metrics: epoch == 2)

    # `auto` now picks the MLP: the resumed run must still build the conv net its checkpoint holds.
    spec = METHODS["simclr"].spec
    monkeypatch.setattr(METHODS["simclr"], "spec", dataclasses.replace(spec, grey_28_encoder="mlp"))
    train(run, grey_28, tmp_path / "parted", resume=True)
    assert json.loads((tmp_path / "parted" / artifacts.CONFIG).read_text())["encoder_resolved"] == "conv"
    assert np.array_equal(np.load(tmp_path / "parted" / artifacts.EMBEDDINGS), np.load(tmp_path / "whole" / artifacts.EMBEDDINGS))
