"""The layers the conv encoder is built of, each shaped for oneDNN's CPU kernels.

Each keeps the parameters and checkpoint keys of the torch layer it replaces (`nn.Conv2d`,
`nn.Linear`) and computes the same function, so runs trained before load and embed the same.
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn
from torch.nn import functional as F


class TapConv2d(nn.Conv2d):
    """A Conv2d computed as one matrix product over its k×k shifted taps, for the first layer.

    oneDNN has no fast CPU kernel for convolutions over 1–3 input channels (an image's own): on
    1,024 grey 28 px views its stride-2 3×3 convolution to 16 channels took 5.3 ms, and stacking the
    9 strided taps of the padded image into a (B, H', W', 9) tensor times the (9, 16) weight 0.8 ms,
    with the same result (bf16, two cores). The output comes out channels-last, as the next layers
    want it. Same parameters, same checkpoint keys as an nn.Conv2d; zero padding only.
    """

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) → (B, out_channels, H', W'), channels-last in memory."""
        if self.padding_mode != "zeros" or self.groups != 1 or self.dilation != (1, 1) or isinstance(self.padding, str):
            return super().forward(images)
        (kernel_h, kernel_w), (stride_h, stride_w), (pad_h, pad_w) = self.kernel_size, self.stride, self.padding
        if torch.is_autocast_enabled(images.device.type):
            # The taps are copies of the pixels: cast the image once, not the 9× larger columns.
            images = images.to(torch.get_autocast_dtype(images.device.type))
        padded = F.pad(images, (pad_w, pad_w, pad_h, pad_h))
        batch, channels, height, width = padded.shape
        out_h, out_w = (height - kernel_h) // stride_h + 1, (width - kernel_w) // stride_w + 1
        taps = [padded[:, :, i : i + stride_h * (out_h - 1) + 1 : stride_h, j : j + stride_w * (out_w - 1) + 1 : stride_w]
                for i in range(kernel_h) for j in range(kernel_w)]  # each (B, C, H', W')
        # (B, H', W', C·k·k), in the weight's (C, kh, kw) order
        columns = torch.stack(taps, dim=-1).permute(0, 2, 3, 1, 4).reshape(batch, out_h, out_w, -1)
        maps = F.linear(columns, self.weight.reshape(self.out_channels, -1), self.bias)  # (B, H', W', out_channels)
        return maps.permute(0, 3, 1, 2)


class FeatureMapLinear(nn.Linear):
    """Flatten → Linear on (B, C, H, W) feature maps, reading them in channels-last (H, W, C) order.

    The weight keeps the flattened map's (C, H, W) column order, as a Flatten → Linear's: the same
    checkpoints load, and give the same outputs. A channels-last map is then flattened without a
    copy, and its gradient comes back channels-last like the map, so the ReLU before this layer
    takes its backward pass without a strided copy.
    """

    def __init__(self, map_shape: tuple[int, int, int], out_features: int, bias: bool = True) -> None:
        super().__init__(math.prod(map_shape), out_features, bias)
        self.map_shape = map_shape

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """maps (B, C, H, W), any memory layout → (B, out_features)."""
        channels, height, width = self.map_shape
        weight = self.weight.view(-1, channels, height, width).permute(0, 2, 3, 1).reshape(self.out_features, -1)
        return F.linear(maps.permute(0, 2, 3, 1).reshape(len(maps), -1), weight, self.bias)


class Float32WeightGradConv2d(nn.Conv2d):
    """A Conv2d whose weight gradient is computed in float32 when it runs under bf16 autocast on a CPU
    without AMX; everything else (the forward pass, the input's gradient) stays bf16.

    There oneDNN's bf16 weight-gradient kernel is its slowest part and barely gains from a second
    thread; its float32 kernel runs twice as fast even with the casts. The conv net's stride-2 layers
    on 1,024 maps, input and weight gradients on two cores: 16→32 channels at 14 px 9.3 → 7.7 ms,
    32→64 at 7 px 7.2 → 6.5 ms. Whole steps on Fashion-MNIST (bench/bench_ab.py --variant
    bf16-conv-weight-grad): 2–3 % faster while the shared host runs fast, 23 % (MoCo) in its slow
    phases, which hit the bf16 kernel hardest. The weight gradient also stays float32 instead of being rounded
    to bf16 on its way to the float32 weight. With AMX, or on a GPU, it is a plain nn.Conv2d.
    """

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """maps (B, C, H, W) → (B, out_channels, H', W')."""
        if not (maps.device.type == "cpu" and torch.is_autocast_enabled("cpu") and torch.is_grad_enabled() and self.weight.requires_grad
                and self.padding_mode == "zeros" and not isinstance(self.padding, str) and not _cpu_has_amx()):
            return super().forward(maps)
        return _Float32WeightGradConvolution.apply(maps, self.weight, self.bias, self, torch.get_autocast_dtype("cpu"))


@functools.cache
def _cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (Intel Sapphire Rapids and later), whose bf16 kernels oneDNN uses instead."""
    is_supported = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private in torch: absent → assume none
    return bool(is_supported()) if is_supported is not None else False


class _Float32WeightGradConvolution(torch.autograd.Function):
    """F.conv2d in `dtype`; in the backward pass the input's gradient in `dtype`, the weight's and the bias's in float32."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, maps: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                layer: nn.Conv2d, dtype: torch.dtype) -> torch.Tensor:
        maps, low_weight = maps.to(dtype), weight.to(dtype)
        ctx.geometry = (list(layer.stride), list(layer.padding), list(layer.dilation), layer.groups)
        ctx.has_bias = bias is not None
        ctx.save_for_backward(maps, low_weight)
        with torch.autocast("cpu", enabled=False):
            return F.conv2d(maps, low_weight, None if bias is None else bias.to(dtype), layer.stride, layer.padding, layer.dilation, layer.groups)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        maps, low_weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.geometry
        grad = grad.contiguous(memory_format=torch.channels_last) if maps.is_contiguous(memory_format=torch.channels_last) else grad.contiguous()
        grad_maps = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_maps = torch.ops.aten.convolution_backward(grad, maps, low_weight, None, stride, padding, dilation, False, [0, 0], groups,
                                                             [True, False, False])[0]
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            _, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
                grad.float(), maps.float(), low_weight.float(), [low_weight.shape[0]] if ctx.has_bias else None, stride, padding, dilation,
                False, [0, 0], groups, [False, ctx.needs_input_grad[1], ctx.needs_input_grad[2]])
        return grad_maps, grad_weight, grad_bias, None, None
