"""From a photo to a model's aligned chip, keeping the 68 landmarks in chip coordinates.

Two alignments, one per model family:

* ``"dlib_chip"``: dlib's 5-point predictor and ``get_face_chip(size=150, padding=0.25)``,
  the preprocessing dlib's ResNet was trained with. The chip is cut by dlib itself.
* ``"arcface_5pt"``: a similarity transform of YuNet's five points onto the standard
  112x112 ArcFace template, as ``cv2.FaceRecognizerSF.alignCrop`` does for SFace.

Both record the affine map image -> chip, so landmarks (and facial regions) follow.

A photo may hold several faces. ``face=None`` takes the largest (with a warning when there are
several), ``face=k`` the k-th largest (0 = the largest) and ``face=(x, y, w, h)`` the detected
face that overlaps that box most; :func:`list_faces` (``xfr faces PHOTO``) shows the choices.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np

from xfr_lib.errors import ImageError, NoFaceError, UnknownNameError
from xfr_lib.faces import _detect
from xfr_lib.faces._detect import (
    Face,
    detect_faces,
    dlib_landmarks,
    dlib_shape,
)
from xfr_lib.faces._image import ImageLike, describe, load_image

#: dlib's ``get_face_chip`` padding, as its face-recognition model was trained with.
DLIB_PADDING = 0.25

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
        n_faces: how many faces the image held.
        source: the image's name (path, or array shape).
    """

    chip: np.ndarray
    transform: np.ndarray
    landmarks: np.ndarray
    face: Face
    n_faces: int
    source: str
    alignment: str = field(default="")


#: What a face choice can be: None (the largest), an index, or an ``(x, y, w, h)`` box.
FaceChoice = int | tuple[float, float, float, float] | None

#: A box must overlap its detected face by at least this IoU to select it.
MIN_BOX_IOU = 0.3


def list_faces(image: ImageLike) -> list[Face]:
    """Every face of a photo, largest first: index ``k`` of this list is ``face=k``."""
    return detect_faces(load_image(image))


def choose_face(faces: list[Face], face: FaceChoice, source: str, shape: tuple[int, ...]
                ) -> Face:
    """The face ``face`` selects among ``faces`` (largest first).

    Raises:
        NoFaceError: there is no face.
        ImageError: the index is out of range, or no face overlaps the box.
    """
    if not faces:
        h, w = shape[:2]
        raise NoFaceError(f"{source}: no face found in the {w}x{h} image; use a photo with a "
                          f"visible, roughly frontal face")
    if face is None:
        if len(faces) > 1:
            warnings.warn(f"{source}: {len(faces)} faces found; using the largest (choose "
                          f"another with face=k or --face k; 'xfr faces' numbers them)",
                          stacklevel=3)
        return faces[0]
    if isinstance(face, (int, np.integer)) and not isinstance(face, bool):
        if not 0 <= face < len(faces):
            raise ImageError(f"{source}: face {face} asked for, but the photo has "
                             f"{len(faces)} face(s), numbered 0..{len(faces) - 1} from the "
                             f"largest ('xfr faces {source}' shows them)")
        return faces[int(face)]
    box = np.asarray(face, dtype=np.float64).ravel()
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
        raise ImageError(f"{source}: face={face!r} is neither a face index nor an (x, y, width, "
                         f"height) box with positive size")
    ious = [_iou(box, f.box) for f in faces]
    best = int(np.argmax(ious))
    if ious[best] < MIN_BOX_IOU:
        raise ImageError(f"{source}: no detected face overlaps the box {box.tolist()} (best "
                         f"IoU {ious[best]:.2f} < {MIN_BOX_IOU}); 'xfr faces {source}' shows "
                         f"the detected boxes")
    return faces[best]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ax0, ay0, aw, ah = (float(v) for v in a)
    bx0, by0, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    ih = max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def align_face(image: ImageLike, alignment: str, size: tuple[int, int],
               face: FaceChoice = None) -> AlignedFace:
    """Detect the faces of ``image``, choose one (``face``) and align it to ``size`` (H, W).

    Args:
        image: a path or an HxWx3 uint8 RGB photo.
        alignment: a key of :data:`ALIGNMENTS`.
        size: ``(H, W)`` of the chip.
        face: None (the largest; a warning if there are several), an index (0 = the largest)
            or an ``(x, y, w, h)`` box in photo pixels.
    """
    if alignment not in ALIGNMENTS:
        raise UnknownNameError("alignment", alignment, sorted(ALIGNMENTS))
    source = describe(image)
    rgb = load_image(image)
    faces = detect_faces(rgb)
    chosen = choose_face(faces, face, source, rgb.shape)
    chip, transform = ALIGNMENTS[alignment](rgb, chosen, size)
    pts = dlib_landmarks(rgb, chosen, 68)
    landmarks = pts @ transform[:, :2].T + transform[:, 2]
    return AlignedFace(chip=chip, transform=transform, landmarks=landmarks.astype(np.float32),
                       face=chosen, n_faces=len(faces), source=source, alignment=alignment)


def _align_dlib_chip(rgb: np.ndarray, face: Face, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    import dlib

    if size[0] != size[1]:
        raise ValueError(f"dlib chips are square, got {size}")
    details = dlib.get_face_chip_details(dlib_shape(rgb, face, 5), size=size[0],
                                          padding=DLIB_PADDING)
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


def alignment_settings(alignment: str) -> dict:
    """The name and fixed settings of an alignment, including how the dlib box is derived.

    Read from the module constants when called, so the settings (and the chip cache key made
    from them) always describe what the alignment code uses.
    """
    if alignment not in ALIGNMENTS:
        raise UnknownNameError("alignment", alignment, sorted(ALIGNMENTS))
    own = ({"padding": DLIB_PADDING, "landmarks": 5} if alignment == "dlib_chip" else
           {"template": np.asarray(ARCFACE_TEMPLATE).tolist(), "interpolation": "linear"})
    return {"name": alignment, **own,
            "dlib_box": {"dy": _detect.DLIB_BOX_DY, "side": list(_detect.DLIB_BOX_SIDE)}}
