"""Reading images from files or arrays into one format: HxWx3 uint8 RGB.

Awkward but usable input is converted (greyscale, 16-bit, alpha, palette, CMYK, EXIF rotation);
unusable input raises :class:`~xfr_lib.errors.ImageError` with one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from xfr_lib.errors import ImageError

# Below this, no detector here finds a face reliably; refuse early with a clear reason.
MIN_SIDE = 32

ImageLike = str | Path | np.ndarray


def describe(image: ImageLike) -> str:
    """A short name of an image for messages: the path, or the array's shape."""
    if isinstance(image, (str, Path)):
        return str(image)
    return f"array {getattr(image, 'shape', '?')}"


def load_image(image: ImageLike) -> np.ndarray:
    """Return ``image`` (a path or an array) as an HxWx3 uint8 RGB array.

    Greyscale is replicated to three channels, 16-bit is scaled to 8-bit, transparent
    pixels are composited on white, and the EXIF orientation is applied.

    Raises:
        ImageError: missing file, not an image, truncated or corrupt, unusable array, or an
            image smaller than ``MIN_SIDE`` pixels.
    """
    rgb = _read_file(Path(image)) if isinstance(image, (str, Path)) else _from_array(image)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageError(
            f"{describe(image)}: image is {w}x{h} px, too small to hold a detectable face "
            f"(need at least {MIN_SIDE} px a side); use a larger image"
        )
    return rgb


def _read_file(path: Path) -> np.ndarray:
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    try:
        with Image.open(path) as img:
            img.load()  # decode now: truncated files fail here, not later
            img = ImageOps.exif_transpose(img)
            return _pil_to_rgb(img, path)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: truncated or corrupt image ({exc}); re-export or re-download it") from None


def _pil_to_rgb(img: Image.Image, path: Path) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        grey = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0) + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info or mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)


def _from_array(arr: np.ndarray) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        raise ImageError(f"expected an image path or a numpy array, got {type(arr).__name__}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageError(f"array of shape {arr.shape} is not an HxW, HxWx3 or HxWx4 image")
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float64) / (65535.0 if arr.dtype == np.uint16 else 255.0)
        rgb = arr[:, :, :3].astype(np.float64)
        full = 65535.0 if arr.dtype == np.uint16 else (1.0 if arr.dtype.kind == "f" else 255.0)
        arr = (rgb * alpha + full * (1 - alpha)).astype(arr.dtype)
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.uint16:
        return (arr.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise ImageError("float image arrays must be finite and in [0, 1]")
        return (arr * 255.0 + 0.5).astype(np.uint8)
    raise ImageError(f"unsupported image array dtype {arr.dtype}; use uint8 RGB")
