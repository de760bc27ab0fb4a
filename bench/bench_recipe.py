"""Recipe screen for the contrastive methods on a grey 28 px dataset: one variant, a fixed time budget.

Trains simclr / moco / byol with the given augmentation, head, temperature, queue, momentum and
warm-up on the first part of the official train split and scores kNN-5 (Euclidean, and cosine
beside it) of the embedding on a validation part carved from the train split (never the test
split), so that recipes are chosen without looking at the test images.

    flock /tmp/latentmap-bench.lock .venv/bin/python bench/bench_recipe.py --method simclr --seconds 180 --min-scale 0.5
    flock /tmp/latentmap-bench.lock .venv/bin/python bench/bench_recipe.py --method simclr --steps 750 --encoder conv --conv-widths 32,64,128 --conv-bn 1

The view defaults are the best screened so far (crop >= 0.5 of the area, ±4.5°, ±40 % brightness/contrast,
no blur or noise; validation kNN-5 0.834 for simclr with the MLP after 750 steps).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.augment import ColourJitterBatch, RandomGaussianBlurBatch, RandomResizedCropBatch  # noqa: E402
from ml.datasets import load_dataset  # noqa: E402
from ml.evaluation import cosine_knn_accuracy, knn_accuracy  # noqa: E402
from ml.losses import in_float32  # noqa: E402
from ml.methods import METHODS, contrastive, moco  # noqa: E402
from ml.models.encoders import ConvEncoder  # noqa: E402
from ml.precision import PRECISIONS, autocast  # noqa: E402
from ml.training import encode  # noqa: E402


class RandomErasingBatch(nn.Module):
    """Zeroes one random rectangle (2-20 % of the area) in a random share of the images (screen only)."""

    def __init__(self, probability: float) -> None:
        super().__init__()
        self.probability = probability

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = images.shape
        area = torch.rand(batch) * 0.18 + 0.02
        ratio = torch.exp((torch.rand(batch) * 2 - 1) * math.log(3))
        box_h = (torch.sqrt(area * ratio) * height).clamp(1, height)
        box_w = (torch.sqrt(area / ratio) * width).clamp(1, width)
        top = torch.rand(batch) * (height - box_h)
        left = torch.rand(batch) * (width - box_w)
        rows = torch.arange(height).view(1, -1, 1)
        cols = torch.arange(width).view(1, 1, -1)
        inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + box_h).view(-1, 1, 1))
                  & (cols >= left.view(-1, 1, 1)) & (cols < (left + box_w).view(-1, 1, 1)))
        chosen = (torch.rand(batch) < self.probability).view(-1, 1, 1)
        return images * ~(inside & chosen).unsqueeze(1)


@in_float32
def decoupled_info_nce_loss(queries: torch.Tensor, keys: torch.Tensor, negatives: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE without the positive in the denominator (decoupled contrastive learning, Yeh et al. 2022): screen only."""
    queries = nn.functional.normalize(queries, dim=1) / temperature
    positive = (queries * nn.functional.normalize(keys, dim=1)).sum(dim=1)
    negative = torch.logsumexp(queries @ nn.functional.normalize(negatives, dim=1).T, dim=1)
    return (negative - positive).mean()


def conv_encoder(args: argparse.Namespace, shape: tuple[int, int, int], dim: int) -> nn.Module:
    """The conv net under test; `--extra-convs` adds a stride-1 3×3 conv (+ batch norm, ReLU) after the named strided blocks."""
    widths = tuple(int(width) for width in args.conv_widths.split(","))
    encoder = ConvEncoder(shape, dim, widths, batch_norm=bool(args.conv_bn))
    extra = {int(index) for index in args.extra_convs.split(",") if index}
    blocks, layers_per_block = list(encoder.features), 3 if args.conv_bn else 2
    deeper: list[nn.Module] = []
    for index, width in enumerate(widths):
        deeper += blocks[index * layers_per_block : (index + 1) * layers_per_block]
        if index in extra:
            deeper += [nn.Conv2d(width, width, 3, padding=1, bias=not args.conv_bn), *([nn.BatchNorm2d(width)] if args.conv_bn else []), nn.ReLU(inplace=True)]
    encoder.features = nn.Sequential(*deeper)
    if not args.conv_hidden:
        encoder.head = nn.Sequential(nn.Flatten(), nn.Linear(encoder.head[1].in_features, dim))
    return encoder


def view_transform(args: argparse.Namespace) -> nn.Sequential:
    steps: list[nn.Module] = [RandomResizedCropBatch(args.min_scale, args.degrees, horizontal_flip=args.flip, max_ratio=args.max_ratio)]
    if args.jitter > 0:
        steps.append(ColourJitterBatch(args.jitter, args.jitter))
    if args.blur > 0:
        steps.append(RandomGaussianBlurBatch(args.blur))
    if args.erase > 0:
        steps.append(RandomErasingBatch(args.erase))
    if args.noise > 0:
        import torchvision.transforms.v2 as v2

        steps.append(v2.GaussianNoise(sigma=args.noise, clip=True))
    return nn.Sequential(*steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--method", default="simclr")
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--steps", type=int, default=0, help="a fixed number of optimiser steps instead of --seconds")
    parser.add_argument("--n-train", type=int, default=50000, help="images of the train split trained on (the last 10k are the validation queries)")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0, help="AdamW's decoupled weight decay (0: Adam, as ml.training)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a method parameter (repeatable), e.g. noise_std=0.3 for dae")
    parser.add_argument("--conv-hidden", type=int, default=1, help="0: the conv net's features go straight to the embedding (no hidden linear layer)")
    parser.add_argument("--warmup", type=float, default=0.0, help="fraction of the steps with a linear lr warm-up")
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--queue", type=int, default=4096)
    parser.add_argument("--momentum", type=float, default=0.99)
    parser.add_argument("--head-hidden", type=int, default=256)
    parser.add_argument("--head-out", type=int, default=64)
    parser.add_argument("--encoder", default="mlp", choices=("mlp", "conv"))
    parser.add_argument("--conv-widths", default="16,32,64", help="channels of the conv encoder's strided blocks")
    parser.add_argument("--extra-convs", default="", help="indices of the strided blocks followed by a stride-1 conv, e.g. 1,2")
    parser.add_argument("--loss", default="infonce", choices=("infonce", "dcl"), help="moco only: dcl drops the positive from the denominator")
    parser.add_argument("--conv-bn", type=int, default=0, help="1: batch norm after every conv (and in its hidden linear layer)")
    parser.add_argument("--min-scale", type=float, default=0.5)
    parser.add_argument("--max-ratio", type=float, default=4 / 3)
    parser.add_argument("--degrees", type=float, default=4.5)
    parser.add_argument("--flip", type=int, default=1)
    parser.add_argument("--jitter", type=float, default=0.4)
    parser.add_argument("--blur", type=float, default=0.0)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--erase", type=float, default=0.0, help="probability of random erasing (one rectangle, 2-20 %% of the area)")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS, help="bfloat16: the networks under CPU autocast, as ml.training on a CPU with native bf16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("LATENTMAP_TORCH_THREADS", "1")))
    torch.manual_seed(args.seed)

    dataset = load_dataset(args.dataset)
    train_part = np.flatnonzero(dataset.train_mask)
    fit_idx, val_idx = train_part[: args.n_train], train_part[-10000:]
    assert len(np.intersect1d(fit_idx, val_idx)) == 0
    images = torch.from_numpy(dataset.images).permute(0, 3, 1, 2).contiguous()

    cls = METHODS[args.method]
    cls.head_hidden, cls.head_output = args.head_hidden, args.head_out
    params = {"temperature": args.temperature, "queue_size": args.queue, "momentum": args.momentum}
    params = {key: value for key, value in params.items() if key in {spec.name for spec in cls.params.specs}}
    given = dict(item.split("=", 1) for item in args.param)
    params.update({key: value for key, value in cls.params.validate(given).items() if key in given})
    if args.encoder == "conv":
        # The methods build their encoder by name alone; the screen swaps in the conv variant under test.
        contrastive.build_encoder = lambda name, shape, dim, **options: conv_encoder(args, shape, dim)
    if args.loss == "dcl":
        moco.info_nce_loss = decoupled_info_nce_loss
    method = cls(dataset.image_shape, 32, encoder=args.encoder, dataset=dataset.name, **params)
    view = view_transform(args)
    if hasattr(method, "views"):  # the autoencoders have no views
        method.views.views = nn.ModuleList([view, view])
    optimiser = (torch.optim.AdamW(method.parameters(), lr=args.lr, weight_decay=args.weight_decay) if args.weight_decay
                 else torch.optim.Adam(method.parameters(), lr=args.lr))

    fit = torch.from_numpy(fit_idx)
    steps_per_epoch = len(fit) // args.batch
    # Speed probe on a copy-free warm start: the first steps decide the step budget.
    method.train()
    probe_start, step, total_steps = time.perf_counter(), 0, (args.steps or None)
    shuffle = torch.Generator().manual_seed(args.seed)
    order = fit[torch.randperm(len(fit), generator=shuffle)]
    losses = []
    start = time.perf_counter()
    while total_steps is None or step < total_steps:
        if step and step % steps_per_epoch == 0:
            order = fit[torch.randperm(len(fit), generator=shuffle)]
        begin = (step % steps_per_epoch) * args.batch
        batch = images[order[begin : begin + args.batch]].float().div_(255.0)
        if total_steps is not None:
            progress = step / total_steps
            warm = min(1.0, progress / args.warmup) if args.warmup > 0 else 1.0
            for group in optimiser.param_groups:
                group["lr"] = args.lr * warm * 0.5 * (1 + math.cos(math.pi * progress))
        with autocast(torch.device("cpu"), args.precision):
            loss = method.loss(batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        method.after_step(step, total_steps or 10**9)
        losses.append(float(loss.detach()))
        if total_steps is None and step == 20:
            per_step = (time.perf_counter() - probe_start) / 20
            total_steps = max(21, int(args.seconds / per_step))
    seconds = time.perf_counter() - start
    embeddings = encode(method, images)
    # Test-time flip averaging: the embedding of an image and its mirror, averaged (when the views flip).
    flip_avg = (embeddings + encode(method, images.flip(-1))) / 2 if args.flip else embeddings
    labels = dataset.labels
    # The EMA twin's embedding (moco's key encoder, byol's target), beside the online encoder's.
    twin = getattr(method, "momentum_encoder", None)
    twin_knn = float("nan")
    if twin is not None:
        method.encoder, online = twin, method.encoder
        twin_embeddings = encode(method, images)
        method.encoder = online
        twin_knn = knn_accuracy(twin_embeddings[fit_idx], labels[fit_idx], twin_embeddings[val_idx], labels[val_idx])
    euclid = knn_accuracy(embeddings[fit_idx], labels[fit_idx], embeddings[val_idx], labels[val_idx])
    cosine = cosine_knn_accuracy(embeddings[fit_idx], labels[fit_idx], embeddings[val_idx], labels[val_idx])
    flipped = knn_accuracy(flip_avg[fit_idx], labels[fit_idx], flip_avg[val_idx], labels[val_idx])
    setting = " ".join(f"{k}={v}" for k, v in vars(args).items() if k not in ("dataset",))
    print(f"RESULT val_knn5={euclid:.4f} val_knn5_cos={cosine:.4f} val_knn5_flipavg={flipped:.4f} val_knn5_twin={twin_knn:.4f} steps={total_steps} epochs={total_steps / steps_per_epoch:.1f} "
          f"s={seconds:.0f} img/s={total_steps * args.batch / seconds:.0f} loss={np.mean(losses[-50:]):.3f} load={os.getloadavg()[0]:.1f} | {setting}", flush=True)


if __name__ == "__main__":
    main()
