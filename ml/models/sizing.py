"""Which encoder suits an image size, and how wide the MLP is: pure arithmetic, no torch.

The web server describes and validates methods with these (the defaults depend on the encoder
`auto` picks), so this module must stay importable without torch; `ml.models.encoders` builds the
networks they name.
"""
from __future__ import annotations

from ml.params import ParamError

ImageShape = tuple[int, int, int]  # (C, H, W)

ENCODER_NAMES = ("mlp", "conv", "resnet18")


def is_small(image_shape: ImageShape) -> bool:
    """Tiny images (at most 16×16 px, such as the 8×8 digits) get the small MLP and many epochs."""
    return image_shape[1] * image_shape[2] <= 16 * 16


def is_grey_28(image_shape: ImageShape) -> bool:
    """Grey images above 16×16 and up to 28×28 px (Fashion-MNIST, MNIST)."""
    channels, height, width = image_shape
    return channels == 1 and height * width <= 28 * 28 and not is_small(image_shape)


def resolve_encoder(name: str, image_shape: ImageShape, grey_28_encoder: str = "mlp") -> str:
    """`auto` → `mlp` for tiny images, `grey_28_encoder` for grey images up to 28×28 px (see `is_grey_28`),
    else `conv`; an unknown name raises ParamError. A method names its own `grey_28_encoder`
    (`MethodSpec.grey_28_encoder`): the wide MLP for the autoencoders and byol, the conv net for simclr and moco."""
    if name == "auto":
        if is_small(image_shape):
            return "mlp"
        return grey_28_encoder if is_grey_28(image_shape) else "conv"
    if name not in ENCODER_NAMES:
        raise ParamError(f"unknown encoder {name!r}; known: auto, {', '.join(ENCODER_NAMES)}")
    return name


def mlp_hidden(image_shape: ImageShape) -> tuple[int, ...]:
    """Hidden widths of the MLP encoder (the decoder mirrors them): 256-128 for tiny images, 1024-512 above."""
    return (256, 128) if is_small(image_shape) else (1024, 512)
