"""The conv encoder's layers (ml/models/conv_layers.py): each computes what the torch layer it replaces computes."""
from __future__ import annotations

import pytest
import torch

from ml.models.conv_layers import FeatureMapLinear, Float32WeightGradConv2d, TapConv2d
from ml.models.encoders import ConvEncoder


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_the_conv_net_runs_channels_last_yet_computes_what_flatten_then_linear_computes(shape: tuple[int, int, int]) -> None:
    """The same weights give the same embeddings and gradients as the NCHW Flatten → Linear of the runs
    trained before, so their checkpoints (the same keys) load and embed alike."""
    torch.manual_seed(0)
    encoder = ConvEncoder(shape, 6, batch_norm=True).train()
    images = torch.rand(4, *shape)
    maps = encoder.features(images.contiguous(memory_format=torch.channels_last))
    assert maps.is_contiguous(memory_format=torch.channels_last)
    linear = encoder.head[1]
    assert isinstance(linear, FeatureMapLinear) and "head.1.weight" in encoder.state_dict()

    reference_maps = maps.detach().contiguous().requires_grad_()  # NCHW, as a Flatten would see them
    reference = torch.nn.functional.linear(reference_maps.flatten(1), linear.weight, linear.bias)
    channels_last_maps = maps.detach().requires_grad_()
    output = linear(channels_last_maps)
    torch.testing.assert_close(output, reference)
    weights = torch.randn_like(output)
    (reference * weights).sum().backward()
    reference_weight_grad = linear.weight.grad.clone()
    linear.weight.grad = None
    (output * weights).sum().backward()
    torch.testing.assert_close(channels_last_maps.grad, reference_maps.grad)
    torch.testing.assert_close(linear.weight.grad, reference_weight_grad)
    assert channels_last_maps.grad.is_contiguous(memory_format=torch.channels_last)  # no strided pass back into the ReLU


@pytest.mark.parametrize(("shape", "stride", "padding"), [((4, 1, 28, 28), 2, 1), ((3, 3, 32, 32), 2, 1), ((2, 3, 9, 11), 1, 0), ((2, 2, 9, 11), (2, 1), (1, 2))])
def test_the_first_layers_tap_convolution_computes_what_conv2d_computes(shape, stride, padding) -> None:
    torch.manual_seed(0)
    tap = TapConv2d(shape[1], 5, 3, stride=stride, padding=padding).double()
    images = torch.rand(*shape, dtype=torch.float64, requires_grad=True)
    output = tap(images)
    expected = torch.nn.functional.conv2d(images, tap.weight, tap.bias, stride, padding)
    torch.testing.assert_close(output, expected)
    assert output.is_contiguous(memory_format=torch.channels_last)  # as the next layers want it
    weights = torch.randn_like(output)
    ours = torch.autograd.grad((output * weights).sum(), [images, tap.weight, tap.bias])
    theirs = torch.autograd.grad((expected * weights).sum(), [images, tap.weight, tap.bias])
    for got, want in zip(ours, theirs):
        torch.testing.assert_close(got, want)
    encoder = ConvEncoder((1, 28, 28), 6, batch_norm=True)
    assert isinstance(encoder.features[0], TapConv2d) and "features.0.weight" in encoder.state_dict()
    assert not any(isinstance(layer, TapConv2d) for layer in encoder.features[1:])


@pytest.mark.parametrize("bias", [False, True])
def test_the_float32_weight_gradient_convolution_computes_what_conv2d_computes(bias: bool) -> None:
    """Under bf16 autocast: nn.Conv2d's bf16 output and input gradient, bit for bit, and weight and bias
    gradients in float32, as near the exact ones as float32 gets (bf16 would be ~100× further off)."""
    torch.manual_seed(0)
    layer = Float32WeightGradConv2d(8, 16, 3, stride=2, padding=1, bias=bias)
    reference = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=bias)
    reference.load_state_dict(layer.state_dict())
    maps = torch.randn(32, 8, 14, 14).contiguous(memory_format=torch.channels_last).requires_grad_()
    with torch.autocast("cpu", torch.bfloat16):
        output, expected = layer(maps), reference(maps)
    assert output.dtype == torch.bfloat16 and torch.equal(output, expected)
    assert output.is_contiguous(memory_format=torch.channels_last)
    weights = torch.randn(output.shape)

    def parameters(module: torch.nn.Conv2d) -> list[torch.Tensor]:
        return [module.weight] + ([module.bias] if bias else [])

    ours = torch.autograd.grad((output.float() * weights).sum(), [maps, *parameters(layer)])
    theirs = torch.autograd.grad((expected.float() * weights).sum(), [maps, *parameters(reference)])
    assert torch.equal(ours[0], theirs[0])  # the input's gradient: the same bf16 kernel
    # Exact: float64 on the bf16 values the forward pass saw (the output's gradient arrives in bf16 too).
    exact_maps = maps.detach().bfloat16().double()
    exact_parameters = [parameter.detach().bfloat16().double().requires_grad_() for parameter in parameters(layer)]
    exact_output = torch.nn.functional.conv2d(exact_maps, exact_parameters[0], exact_parameters[1] if bias else None, 2, 1)
    exact = torch.autograd.grad(exact_output, exact_parameters, weights.bfloat16().double())
    for got, want in zip(ours[1:], exact):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4 * want.abs().max().item())

    # Outside autocast, and without gradients, it is nn.Conv2d.
    for context in (torch.no_grad(), torch.enable_grad()):
        with context:
            assert torch.equal(layer(maps), reference(maps))
    encoder = ConvEncoder((1, 28, 28), 6, batch_norm=True)
    assert [type(layer) for layer in encoder.features if isinstance(layer, torch.nn.Conv2d)] == [TapConv2d, Float32WeightGradConv2d, Float32WeightGradConv2d]
