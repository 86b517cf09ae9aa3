"""From a photo to a model's aligned chip, keeping the 68 landmarks in chip coordinates.

Two alignments, one per model family:

* ``"dlib_chip"``: dlib's 5-point predictor and ``get_face_chip(size=150, padding=0.25)``,
  the preprocessing dlib's ResNet was trained with. The chip is cut by dlib itself.
* ``"arcface_5pt"``: a similarity transform of YuNet's five points onto the standard
  112x112 ArcFace template, as ``cv2.FaceRecognizerSF.alignCrop`` does for SFace.

Both record the affine map image -> chip, so landmarks (and later facial regions) follow.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np

from xfr_lib.errors import NoFaceError, UnknownNameError
from xfr_lib.faces.detect import Face, detect_faces, dlib_landmarks, dlib_shape
from xfr_lib.faces.image import ImageLike, describe, load_image

# The five ArcFace landmarks in a 112x112 chip (used by InsightFace and OpenCV's SFace).
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


@dataclass
class AlignedFace:
    """A face cut out and aligned for one model.

    Attributes:
        chip: HxWx3 uint8 RGB aligned face.
        transform: ``[2, 3]`` affine map from image to chip pixel coordinates.
        landmarks: ``[68, 2]`` dlib landmarks in chip coordinates.
        face: the detection in the original image.
        n_faces: how many faces the image held (the largest one is used).
        source: the image's name (path, or array shape).
    """

    chip: np.ndarray
    transform: np.ndarray
    landmarks: np.ndarray
    face: Face
    n_faces: int
    source: str
    alignment: str = field(default="")


def largest_face(rgb: np.ndarray, source: str) -> tuple[Face, int]:
    """The largest face and the number of faces; warns when there are several."""
    faces = detect_faces(rgb)
    if not faces:
        h, w = rgb.shape[:2]
        raise NoFaceError(f"{source}: no face found in the {w}x{h} image; use a photo with a visible, "
                          f"roughly frontal face")
    if len(faces) > 1:
        warnings.warn(f"{source}: {len(faces)} faces found; using the largest", stacklevel=3)
    return faces[0], len(faces)


def align_face(image: ImageLike, alignment: str, size: tuple[int, int]) -> AlignedFace:
    """Detect the largest face of ``image`` and align it with ``alignment`` to ``size`` (H, W)."""
    if alignment not in ALIGNMENTS:
        raise UnknownNameError("alignment", alignment, sorted(ALIGNMENTS))
    source = describe(image)
    rgb = load_image(image)
    face, n = largest_face(rgb, source)
    chip, transform = ALIGNMENTS[alignment](rgb, face, size)
    pts = dlib_landmarks(rgb, face, 68)
    landmarks = pts @ transform[:, :2].T + transform[:, 2]
    return AlignedFace(chip=chip, transform=transform, landmarks=landmarks.astype(np.float32),
                       face=face, n_faces=n, source=source, alignment=alignment)


def _align_dlib_chip(rgb: np.ndarray, face: Face, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    import dlib

    if size[0] != size[1]:
        raise ValueError(f"dlib chips are square, got {size}")
    details = dlib.get_face_chip_details(dlib_shape(rgb, face, 5), size=size[0], padding=0.25)
    chip = dlib.extract_image_chip(rgb, details)
    return np.ascontiguousarray(chip), _dlib_chip_transform(details)


def _dlib_chip_transform(details) -> np.ndarray:
    """dlib's ``get_mapping_to_chip``: rect corners rotated about the rect centre -> chip corners."""
    r = details.rect
    centre = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
    c, s = np.cos(details.angle), np.sin(details.angle)
    rot = np.array([[c, -s], [s, c]])
    corners = np.array([[r.left(), r.top()], [r.right(), r.top()], [r.right(), r.bottom()]])
    src = (corners - centre) @ rot.T + centre
    dst = np.array([[0, 0], [details.cols - 1, 0], [details.cols - 1, details.rows - 1]], dtype=np.float64)
    return cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, shift) mapping src to dst.

    Umeyama's closed form (1991); returns a ``[2, 3]`` matrix.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sing, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    scale = (sing * sign).sum() / s0.var(0).sum()
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def _align_arcface(rgb: np.ndarray, face: Face, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    template = ARCFACE_TEMPLATE * np.array([size[1] / 112.0, size[0] / 112.0])
    m = similarity_transform(face.points5, template)
    chip = cv2.warpAffine(rgb, m, (size[1], size[0]), flags=cv2.INTER_LINEAR)
    return chip, m


ALIGNMENTS = {"dlib_chip": _align_dlib_chip, "arcface_5pt": _align_arcface}
