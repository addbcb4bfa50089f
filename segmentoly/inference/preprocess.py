"""Turning a user's image into the network input: the one preprocessing every backend shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from segmentoly.data.transforms import ResizeMode, padded_size, resize_image


class ImageError(ValueError):
    """An image the models cannot take."""


def as_bgr_image(image: np.ndarray) -> np.ndarray:
    """A 3-channel BGR uint8 ``[H, W, 3]`` view or copy of ``image``.

    Grayscale (``[H, W]`` or ``[H, W, 1]``) is replicated to three channels and BGRA drops its alpha; any other
    shape or dtype is an error, since guessing a colour order or a value range would give silent garbage.
    """
    if not isinstance(image, np.ndarray):
        raise ImageError(f"image: expected a numpy array (as cv2.imread returns), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageError(f"image: expected dtype uint8 (0..255), got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"image: expected an [H, W, 3] BGR image (or grayscale / BGRA), got shape {image.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.shape[2] == 4:
        return image[:, :, :3]
    return image


@dataclass(frozen=True)
class Prepared:
    """A network input and how it relates to the original image."""

    blob: np.ndarray  # [1, 3, Hp, Wp] float32 BGR, padded to the size divisor
    original_size: tuple[int, int]  # (H, W) of the user's image
    resized_size: tuple[int, int]  # (h, w) before padding
    scale: tuple[float, float]  # (scale_y, scale_x) from original to network pixels


def preprocess(image: np.ndarray, resize: ResizeMode, *, pixel_mean: Sequence[float], size_divisor: int) -> Prepared:
    """Resize as ``resize`` says and pad the bottom and right to multiples of ``size_divisor``.

    The padding holds the model's mean pixel: the model subtracts the mean, so the padded area is exactly zero
    inside the network, as in Detectron's blobs.
    """
    image = as_bgr_image(image)
    height, width = image.shape[:2]
    # Resized in float32, as training resizes its samples and Detectron its test images.
    resized, scale = resize_image(image.astype(np.float32), resize)
    new_h, new_w = resized.shape[:2]
    padded_h, padded_w = padded_size(new_h, new_w, size_divisor)
    blob = np.empty((1, 3, padded_h, padded_w), np.float32)
    blob[0] = np.asarray(pixel_mean, np.float32).reshape(3, 1, 1)
    blob[0, :, :new_h, :new_w] = resized.transpose(2, 0, 1)
    return Prepared(blob, (height, width), (new_h, new_w), scale)
