"""TensorBoard projector sprites: one image holding every point's thumbnail as a grid of tiles.

TensorBoard's rules: tiles of `single_image_dim` = [width, height] px, laid out row-major from the
top left; the writer makes the grid square (ceil(sqrt(N)) tiles a side), so the last rows may be
empty; a sprite is at most 8192 × 8192 px.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from ml.datasets.images import UnreadableImage, converted, is_grey, open_image
from ml.interchange.table import InterchangeError

MAX_SPRITE_SIDE = 8192


def read_sprite(path: Path, n: int, tile: tuple[int, int]) -> np.ndarray:
    """uint8 N × H × W × C (C = 1 when the sprite is grey, else 3): tile i of the sprite for point i."""
    width, height = int(tile[0]), int(tile[1])
    if width <= 0 or height <= 0:
        raise InterchangeError(f"{path.name}: single_image_dim must be two sizes > 0, got {list(tile)}")
    try:
        image = open_image(path, max_pixels=MAX_SPRITE_SIDE * MAX_SPRITE_SIDE)
    except UnreadableImage as exc:
        raise InterchangeError(f"{path.name}: {exc.reason}") from None
    if image.width % width or image.height % height:
        raise InterchangeError(f"{path.name}: a {image.width}×{image.height} px sprite is not a grid of"
                               f" {width}×{height} px tiles")
    columns, rows = image.width // width, image.height // height
    if columns * rows < n:
        raise InterchangeError(f"{path.name}: the sprite holds {columns}×{rows} = {columns * rows} tiles,"
                               f" the embedding has {n} points")
    pixels = np.asarray(converted(image, "L" if is_grey(image) else "RGB"))
    pixels = pixels.reshape(rows, height, columns, width, -1).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(pixels.reshape(rows * columns, height, width, -1)[:n])


def sprite_image(images: np.ndarray) -> tuple[Image.Image, tuple[int, int]]:
    """(sprite, (tile width, tile height)) of uint8 N × H × W × C images, as TensorBoard lays it out;
    tiles are scaled down when a square grid of them would pass 8192 px a side."""
    n, height, width, channels = images.shape
    side = math.ceil(math.sqrt(n))
    scale = min(1.0, MAX_SPRITE_SIDE / (side * max(height, width)))
    tile_width, tile_height = max(1, int(width * scale)), max(1, int(height * scale))
    mode = "L" if channels == 1 else "RGB"
    sprite = Image.new(mode, (side * tile_width, side * tile_height))
    for index in range(n):
        tile = Image.fromarray(images[index, ..., 0] if channels == 1 else images[index], mode=mode)
        if tile.size != (tile_width, tile_height):
            tile = tile.resize((tile_width, tile_height), Image.Resampling.LANCZOS)
        sprite.paste(tile, ((index % side) * tile_width, (index // side) * tile_height))
    return sprite, (tile_width, tile_height)
