"""PNG thumbnails and atlas sprite sheets of dataset images (Pillow, no torch)."""
from __future__ import annotations

import base64
import io
import math

import numpy as np
from PIL import Image

from ml.datasets import ImageDataset

ATLAS_COLUMNS = 64
ATLAS_PER_PAGE = 4096
ATLAS_TILE = 32
# A sheet is at most 64 × 64 = 4,096 px wide and tall (16 M pixels, ≈1 s to render on one core);
# 128 px tiles made 8,192 px sheets that took 5 s each and 67 MB while they were drawn.
ATLAS_MAX_TILE = 64
THUMBNAIL_SIZE = 64


def _pil(pixels: np.ndarray) -> Image.Image:
    """uint8 H × W × C (C = 1 or 3) → a PIL image."""
    if pixels.shape[-1] == 1:
        return Image.fromarray(np.ascontiguousarray(pixels[..., 0]), mode="L")
    return Image.fromarray(np.ascontiguousarray(pixels), mode="RGB")


def _resample(source_size: int, target_size: int) -> Image.Resampling:
    # Upscaled tiny images (8×8 digits) stay crisp; downscaled photos stay smooth.
    return Image.Resampling.NEAREST if target_size >= source_size else Image.Resampling.LANCZOS


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def resized(pixels: np.ndarray, size: int) -> Image.Image:
    """One image (uint8 H × W × C) scaled so its longer side is `size` px."""
    image = _pil(pixels)
    longest = max(image.size)
    scale = size / longest
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(target, _resample(longest, size))


def thumbnail_png(dataset: ImageDataset, index: int, size: int) -> bytes:
    return png_bytes(resized(dataset.images[index], size))


def atlas_pages(n: int, per_page: int = ATLAS_PER_PAGE) -> int:
    return max(1, math.ceil(n / per_page))


def atlas_png(dataset: ImageDataset, page: int, tile: int) -> bytes:
    """Page `page` of the sprite sheet: image i at column (i % per_page) % 64, row (i % per_page) // 64."""
    first = page * ATLAS_PER_PAGE
    count = min(ATLAS_PER_PAGE, len(dataset) - first)
    rows = math.ceil(count / ATLAS_COLUMNS)
    channels = dataset.images.shape[-1]
    sheet = Image.new("L" if channels == 1 else "RGB", (ATLAS_COLUMNS * tile, rows * tile))
    for offset in range(count):
        image = _pil(dataset.images[first + offset])
        if image.size != (tile, tile):
            image = image.resize((tile, tile), _resample(max(image.size), tile))
        sheet.paste(image, ((offset % ATLAS_COLUMNS) * tile, (offset // ATLAS_COLUMNS) * tile))
    return png_bytes(sheet)


def data_url(pixels: np.ndarray, size: int) -> str:
    """A PNG data: URL of one image scaled to `size` px."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(resized(pixels, size))).decode("ascii")


def strip_png(images: np.ndarray, size: int) -> bytes:
    """One PNG of images (uint8 M × H × W × C) side by side, left to right, each scaled to `size` px."""
    tiles = [resized(pixels, size) for pixels in images]
    strip = Image.new(tiles[0].mode, (sum(tile.width for tile in tiles), max(tile.height for tile in tiles)))
    left = 0
    for tile in tiles:
        strip.paste(tile, (left, 0))
        left += tile.width
    return png_bytes(strip)
