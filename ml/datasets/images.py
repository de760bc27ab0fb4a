"""Reading one image file safely: PNG or JPEG by content, size checked before decoding, fully decoded."""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

ACCEPTED_FORMATS = ("PNG", "JPEG")
# Far above any image this product trains on, far below what would exhaust memory when decoded.
MAX_IMAGE_PIXELS = 4096 * 4096
# Modes whose pixels are grey by construction; other modes are grey when R = G = B everywhere.
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"})
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L"})


class UnreadableImage(Exception):
    """A file that is not a usable image; `reason` is for a person (e.g. shown in `skipped`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def open_image(source: Path | BinaryIO, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Open a PNG or JPEG, refuse it if over `max_pixels` (from the header, before decoding),
    decode every pixel (so corrupt or truncated files fail here) and apply its EXIF orientation.

    Raises UnreadableImage with the reason.
    """
    try:
        image = Image.open(source, formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as error:
        raise UnreadableImage(f"too large to decode safely: {error}") from None
    except (OSError, SyntaxError, ValueError):  # UnidentifiedImageError is an OSError
        raise UnreadableImage("not a PNG or JPEG image") from None
    try:
        width, height = image.size
        if width * height > max_pixels:
            raise UnreadableImage(f"too large: {width}×{height} pixels (limit {max_pixels:,} pixels)")
        image.load()
        return ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as error:
        raise UnreadableImage(f"too large to decode safely: {error}") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as error:
        raise UnreadableImage(f"corrupt or truncated {image.format} image: {error}") from None
    finally:
        image.close()  # the transposed copy (or the loaded pixels) outlive the file handle


def is_grey(image: Image.Image) -> bool:
    """Whether every pixel of `image` is grey (a grey mode, or equal R, G and B channels)."""
    if image.mode in GREY_MODES:
        return True
    rgb = np.asarray(image.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def converted(image: Image.Image, mode: str) -> Image.Image:
    """`image` in `mode` ("L" or "RGB"). 16-bit grey is scaled to 8 bits (v / 257): PIL's own
    conversion clips it at 255, which would turn most of a 16-bit image white."""
    if image.mode in SIXTEEN_BIT_MODES:
        pixels = np.round(np.asarray(image, dtype=np.float64) / 257.0)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")
    return image.convert(mode)
