"""Synthetic occluders drawn onto aligned chips, with their ground-truth masks.

An occluder is placed from the 68 dlib landmarks in chip coordinates
(:attr:`xfr_lib.faces.AlignedFace.landmarks`, or ``EmbeddingSet.landmarks``), so it
lands on the same facial part whatever the face's size or roll:

* ``"sunglasses"``: a band along the eye line covering both eyes, from temple to temple.
* ``"mask"``: the lower face below the nose (a surgical mask), bounded by the jaw line;
  ``cover_nose=True`` raises its top edge to the middle of the nose, as real masks are worn.
* ``"patch"``: a square of side ``size`` centred on one landmark (default 30, the nose tip).

Fills:

* ``"black"`` (0) and ``"grey"`` (128): uniform. A multiplicative perturbation
  (``chip * mask``, CorrRISE and RISE) leaves a black occluder unchanged, so those explainers
  cannot measure anything there: the occluder is *invisible* to them, not dissimilar.
* ``"texture"``: seeded stripes of two random colours plus noise: a high-contrast, non-face
  pattern that masking does change.
* ``"photo"``: a seeded random crop of another image (``source``), e.g. another face.

Every random choice is drawn from ``numpy.random.default_rng(seed)``.

The ground truth is used with :func:`xfr_lib.faces.mass_in_region` (the share of a saliency
map's mass that falls on the occluder) and :func:`xfr_lib.faces.mass_ratio_to_chance` (that
share over the occluder's share of the chip's area: 1 = no better than a map spread evenly,
> 1 = concentrated on it).

Example:
    >>> import numpy as np
    >>> chip = np.full((112, 112, 3), 200, np.uint8)
    >>> lm = np.zeros((68, 2)); lm[36:42] = (38, 52); lm[42:48] = (74, 52)
    >>> out, region = occlude(chip, lm, "sunglasses", fill="black")
    >>> bool(region[52, 56]), int(out[52, 56, 0])
    (True, 0)
"""

from __future__ import annotations

import cv2
import numpy as np

from xfr_lib.errors import ImageError, UnknownNameError, XfrError

OCCLUDER_KINDS = ("sunglasses", "mask", "patch")
OCCLUDER_FILLS = ("black", "grey", "texture", "photo")

# 68-point indices (iBUG 300-W order).
_JAW = slice(0, 17)
_LEFT_EYE = slice(36, 42)  # the eye on the image's left (the subject's right eye)
_RIGHT_EYE = slice(42, 48)
_NOSE_BASE = [35, 34, 33, 32, 31]  # right to left along the bottom of the nose
_NOSE_MIDDLE = 29


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (68, 2):
        raise XfrError(f"landmarks must be an array [68, 2] in chip coordinates, got shape "
                       f"{list(pts.shape)}; pass AlignedFace.landmarks or EmbeddingSet.landmarks[i]")
    if not np.isfinite(pts).all():
        raise XfrError("landmarks contain NaN (no face was found in that image); occlude only "
                       "images whose EmbeddingSet.ok is True")
    return pts


def _polygon_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean HxW mask of a filled polygon (sub-pixel vertices, 4 fractional bits)."""
    canvas = np.zeros(shape, np.uint8)
    pts = np.round(np.asarray(points) * 16).astype(np.int32)
    cv2.fillPoly(canvas, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return canvas.astype(bool)


def occluder_region(kind: str, landmarks: np.ndarray, shape: tuple[int, int], *,
                    landmark: int = 30, size: float | None = None, band_height: float = 0.55,
                    band_length: float = 2.1, cover_nose: bool = False) -> np.ndarray:
    """The boolean ``[H, W]`` region an occluder of ``kind`` covers on a chip.

    Args:
        kind: ``"sunglasses"``, ``"mask"`` or ``"patch"``.
        landmarks: ``[68, 2]`` dlib landmarks in chip coordinates (x, y).
        shape: ``(H, W)`` of the chip.
        landmark: for ``"patch"``: index of the landmark the square is centred on.
        size: for ``"patch"``: side in pixels; default a quarter of the chip's width.
        band_height: for ``"sunglasses"``: band height as a multiple of the distance d
            between the eye centres.
        band_length: for ``"sunglasses"``: band length as a multiple of d (2.1 reaches the
            temples on frontal faces).
        cover_nose: for ``"mask"``: top edge at the middle of the nose instead of its base.
    """
    if kind not in OCCLUDER_KINDS:
        raise UnknownNameError("occluder kind", kind, OCCLUDER_KINDS)
    pts = _check_landmarks(landmarks)
    h, w = int(shape[0]), int(shape[1])
    if kind == "sunglasses":
        left, right = pts[_LEFT_EYE].mean(0), pts[_RIGHT_EYE].mean(0)
        d = float(np.linalg.norm(right - left))
        if d == 0:
            raise XfrError("the two eye centres coincide; these are not face landmarks")
        u = (right - left) / d  # along the eye line (follows the face's roll)
        n = np.array([-u[1], u[0]])
        c = (left + right) / 2
        a, b = band_length * d / 2, band_height * d / 2
        corners = np.array([c - a * u - b * n, c + a * u - b * n, c + a * u + b * n,
                            c - a * u + b * n])
        return _polygon_mask(corners, (h, w))
    if kind == "mask":
        jaw = pts[_JAW][1:16]  # from the left cheek, around the chin, to the right cheek
        top = pts[[_NOSE_MIDDLE]] if cover_nose else pts[_NOSE_BASE]
        return _polygon_mask(np.vstack([jaw, top]), (h, w))
    if not 0 <= landmark < 68:
        raise XfrError(f"landmark={landmark} is not a 68-point index; use 0..67 (30 = nose tip)")
    side = w / 4 if size is None else float(size)
    if side <= 0:
        raise XfrError(f"patch size={size} must be positive (pixels)")
    x, y = pts[landmark]
    half = side / 2
    corners = np.array([[x - half, y - half], [x + half, y - half], [x + half, y + half],
                        [x - half, y + half]])
    return _polygon_mask(corners, (h, w))


def _texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Stripes of two random colours at a random angle and period, plus Gaussian noise."""
    h, w = shape
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(5, 12)
    colours = rng.integers(0, 256, size=(2, 3))
    yy, xx = np.mgrid[0:h, 0:w]
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)
    stripes = (np.sin(phase) > 0)[..., None]
    img = np.where(stripes, colours[0], colours[1]).astype(np.float64)
    img += rng.normal(0, 25, size=(h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _photo(source: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random ``shape`` crop of ``source`` (scaled up first if it is smaller)."""
    src = np.asarray(source)
    if src.ndim == 2:
        src = np.repeat(src[..., None], 3, axis=2)
    if src.ndim != 3 or src.shape[2] != 3 or src.dtype != np.uint8:
        raise ImageError(f"photo fill source must be an HxWx3 uint8 RGB image, got "
                         f"{src.dtype} {list(src.shape)}")
    h, w = shape
    scale = max(h / src.shape[0], w / src.shape[1], 1.0)
    if scale > 1.0:
        size = (int(np.ceil(src.shape[1] * scale)), int(np.ceil(src.shape[0] * scale)))
        src = cv2.resize(src, size, interpolation=cv2.INTER_LINEAR)
    top = int(rng.integers(0, src.shape[0] - h + 1))
    left = int(rng.integers(0, src.shape[1] - w + 1))
    return np.ascontiguousarray(src[top:top + h, left:left + w])


def occluder_content(fill: str, shape: tuple[int, int], seed: int = 0,
               source: np.ndarray | None = None) -> np.ndarray:
    """The ``HxWx3`` uint8 content an occluder is cut from.

    Args:
        fill: ``"black"``, ``"grey"``, ``"texture"`` or ``"photo"``.
        shape: ``(H, W)``.
        seed: seed for ``"texture"`` and for the crop position of ``"photo"``.
        source: the image a ``"photo"`` fill is cut from (HxWx3 uint8 RGB).
    """
    if fill not in OCCLUDER_FILLS:
        raise UnknownNameError("occluder fill", fill, OCCLUDER_FILLS)
    h, w = int(shape[0]), int(shape[1])
    rng = np.random.default_rng(seed)
    if fill == "black":
        return np.zeros((h, w, 3), np.uint8)
    if fill == "grey":
        return np.full((h, w, 3), 128, np.uint8)
    if fill == "texture":
        return _texture((h, w), rng)
    if source is None:
        raise XfrError("fill='photo' needs source=<an HxWx3 uint8 image> to cut the occluder "
                       "from (e.g. another person's chip)")
    return _photo(source, (h, w), rng)


def occlude(chip: np.ndarray, landmarks: np.ndarray, kind: str = "sunglasses",
            fill: str = "black", *, seed: int = 0, source: np.ndarray | None = None,
            **region: float | bool) -> tuple[np.ndarray, np.ndarray]:
    """Draw an occluder on an aligned chip.

    Args:
        chip: ``HxWx3`` uint8 RGB aligned chip.
        landmarks: ``[68, 2]`` landmarks of that chip, in chip coordinates.
        kind: ``"sunglasses"``, ``"mask"`` or ``"patch"`` (see :func:`occluder_region`).
        fill: ``"black"``, ``"grey"``, ``"texture"`` or ``"photo"`` (see :func:`occluder_content`).
        seed: seed of the fill's random choices (texture, photo crop).
        source: image for ``fill="photo"``.
        **region: geometry options of :func:`occluder_region` (``landmark``, ``size``,
            ``band_height``, ``band_length``, ``cover_nose``).

    Returns:
        ``(occluded chip HxWx3 uint8, ground-truth region HxW bool)``; the input is not
        modified.
    """
    img = np.asarray(chip)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ImageError(f"chip must be an HxWx3 uint8 RGB array, got {img.dtype} "
                         f"{list(img.shape)}; use AlignedFace.chip or EmbeddingSet.chips[i]")
    mask = occluder_region(kind, landmarks, img.shape[:2], **region)
    content = occluder_content(fill, img.shape[:2], seed=seed, source=source)
    out = np.where(mask[..., None], content, img)
    return np.ascontiguousarray(out), mask
