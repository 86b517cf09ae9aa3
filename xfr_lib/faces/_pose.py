"""A rough head-pose estimate (yaw and roll) from the 68 dlib landmarks.

This is a proxy for ranking and selecting pairs by pose difference, not a calibrated
head-pose estimator (no 3-D model, no camera model):

* **roll** is the angle of the line from the eye on the image's left (points 36-41) to the
  eye on the image's right (points 42-47), in degrees; positive = clockwise in the image
  (the right eye lower, image y pointing down).
* **yaw**: after undoing the roll, the horizontal offset of the nose tip (point 30) from the
  midpoint of the face's horizontal extent, as a fraction ``r`` of half that extent. The
  extent is the mean of the jaw-outline ends (points 0 and 16) and of the outer eye corners
  pushed out by half the eye width (points 36 and 45): the jaw ends are unreliable in
  profile views. Modelling the head as a cylinder whose silhouette stays fixed while the
  nose tip turns on it gives ``r = sin(yaw)``, so ``yaw = degrees(arcsin(clip(r, -1, 1)))``.
  Positive yaw = the nose tip points to the image's right (the subject turns to their left).

On chips aligned by similarity transforms (all of xfr's alignments) the roll is near zero
by construction; the yaw survives alignment.

Example:
    >>> import numpy as np
    >>> lm = np.zeros((68, 2))
    >>> lm[0], lm[16], lm[30] = (10, 50), (110, 50), (60, 80)
    >>> lm[36:42], lm[42:48] = (37.5, 50), (82.5, 50)
    >>> round(float(yaw(lm)), 3), round(float(roll(lm)), 3)
    (0.0, 0.0)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xfr_lib.errors import XfrError

# Left-right permutation of the 68 iBUG 300-W points (a mirrored face's point i is point
# _MIRROR[i] of the original).
_MIRROR = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 16, -1))  # brows
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # nose base
    + [45, 44, 43, 42, 47, 46]  # left eye <- right eye
    + [39, 38, 37, 36, 41, 40]  # right eye <- left eye
    + [54, 53, 52, 51, 50, 49, 48]  # outer lip, top
    + [59, 58, 57, 56, 55]  # outer lip, bottom
    + [64, 63, 62, 61, 60]  # inner lip, top
    + [67, 66, 65]  # inner lip, bottom
)


def _as_batch(landmarks: np.ndarray) -> tuple[np.ndarray, bool]:
    pts = np.asarray(landmarks, dtype=np.float64)
    single = pts.ndim == 2
    if single:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[1:] != (68, 2):
        raise XfrError(f"landmarks must be [68, 2] or [N, 68, 2] (x, y), got shape "
                       f"{list(np.shape(landmarks))}")
    return pts, single


def mirror_landmarks(landmarks: np.ndarray, width: float) -> np.ndarray:
    """Landmarks of the horizontally mirrored image (x -> width - 1 - x), re-indexed.

    Mirroring also swaps left and right points (the left eye becomes the right eye), so
    the result is a valid 68-point set of the mirrored face.

    Args:
        landmarks: ``[68, 2]`` or ``[N, 68, 2]``.
        width: image width in pixels.
    """
    pts, single = _as_batch(landmarks)
    out = pts[:, _MIRROR].copy()
    out[..., 0] = width - 1 - out[..., 0]
    return out[0] if single else out


def roll(landmarks: np.ndarray) -> np.ndarray | float:
    """Roll angle in degrees (eye line vs horizontal; positive = clockwise in the image).

    Args:
        landmarks: ``[68, 2]`` or ``[N, 68, 2]``; NaN landmarks give NaN.
    """
    pts, single = _as_batch(landmarks)
    d = pts[:, 42:48].mean(1) - pts[:, 36:42].mean(1)
    out = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    return float(out[0]) if single else out


def yaw(landmarks: np.ndarray) -> np.ndarray | float:
    """Yaw proxy in degrees (positive = nose tip towards the image's right), in [-90, 90].

    Args:
        landmarks: ``[68, 2]`` or ``[N, 68, 2]``; NaN landmarks give NaN.
    """
    pts, single = _as_batch(landmarks)
    angle = np.radians(roll(pts))
    c, s = np.cos(-angle), np.sin(-angle)
    # Rotate x by -roll about the origin; only x coordinates are needed afterwards.
    x = pts[..., 0] * c[:, None] - pts[..., 1] * s[:, None]
    eye_w = (np.abs(x[:, 39] - x[:, 36]) + np.abs(x[:, 45] - x[:, 42])) / 2
    left = (x[:, 0] + (x[:, 36] - eye_w / 2)) / 2
    right = (x[:, 16] + (x[:, 45] + eye_w / 2)) / 2
    half = (right - left) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (x[:, 30] - (left + right) / 2) / half
    out = np.degrees(np.arcsin(np.clip(r, -1.0, 1.0)))
    return float(out[0]) if single else out


def pose_table(landmarks: np.ndarray) -> pd.DataFrame:
    """Yaw and roll (degrees) of every face of ``[N, 68, 2]`` landmarks, one row per face."""
    pts, _ = _as_batch(landmarks)
    return pd.DataFrame({"yaw": yaw(pts), "roll": roll(pts)})
