"""Face detection (YuNet, through OpenCV) and 68-point landmarks (dlib's shape predictor).

YuNet finds faces with five landmarks (eyes, nose tip, mouth corners); it found all 400 ORL
faces and every face of the in-the-wild photos, where dlib's HOG detector misses some. dlib's
68-point predictor then places the landmarks that later chapters use to name facial regions
(jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67). Its training data (iBUG 300-W)
is for non-commercial research use only.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from xfr_lib.data import asset_file

# Measured on 128 faces (wild set + ORL): dlib's frontal detector box relative to YuNet's box
# (centre shift in box units and side length). dlib's shape predictors were trained on boxes of
# that geometry, so we hand them one.
DLIB_BOX_DY = 0.057
DLIB_BOX_SIDE = (1.092, 0.821)  # x YuNet width, x YuNet height (averaged)

#: YuNet's settings: minimum score, non-maximum suppression IoU, most candidates kept.
DETECTOR = {"model": "face_detection_yunet_2023mar_int8bq.onnx", "score_threshold": 0.6,
            "nms_threshold": 0.3, "top_k": 5000}
#: dlib's landmark predictors by number of points.
LANDMARK_MODELS = {5: "shape_predictor_5_face_landmarks.dat",
                   68: "shape_predictor_68_face_landmarks.dat"}

_lock = threading.Lock()


@dataclass(frozen=True)
class Face:
    """One detected face in image coordinates.

    Attributes:
        box: ``(x, y, width, height)`` in pixels.
        score: detector confidence in [0, 1].
        points5: ``[5, 2]`` YuNet landmarks: right eye, left eye (the subject's), nose tip,
            right and left mouth corner.
    """

    box: np.ndarray
    score: float
    points5: np.ndarray

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])

    def dlib_rect(self):
        """The box dlib's shape predictors expect (see ``_DLIB_BOX_*``), as a dlib rectangle."""
        import dlib

        x, y, w, h = (float(v) for v in self.box)
        cx, cy = x + w / 2, y + h / 2 + DLIB_BOX_DY * h
        half = (DLIB_BOX_SIDE[0] * w + DLIB_BOX_SIDE[1] * h) / 4
        return dlib.rectangle(round(cx - half), round(cy - half), round(cx + half), round(cy + half))


@functools.cache
def _yunet():
    path = asset_file("yunet", DETECTOR["model"])
    return cv2.FaceDetectorYN.create(str(path), "", (320, 320), DETECTOR["score_threshold"],
                                     DETECTOR["nms_threshold"], DETECTOR["top_k"])


@functools.cache
def _predictor(points: int):
    import dlib

    return dlib.shape_predictor(str(asset_file("dlib_landmarks", LANDMARK_MODELS[points])))


def detect_faces(rgb: np.ndarray, score_threshold: float | None = None) -> list[Face]:
    """All faces in an HxWx3 uint8 RGB image, largest first.

    ``score_threshold`` defaults to ``DETECTOR["score_threshold"]`` (read at call time, as the
    chip cache key reads it).
    """
    if score_threshold is None:
        score_threshold = DETECTOR["score_threshold"]
    h, w = rgb.shape[:2]
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    with _lock:  # one cv2 detector object per process; it is not thread-safe
        det = _yunet()
        det.setInputSize((w, h))
        det.setScoreThreshold(score_threshold)
        _, found = det.detect(bgr)
    if found is None:
        return []
    faces = [Face(box=row[:4].astype(np.float32), score=float(row[14]),
                  points5=row[4:14].reshape(5, 2).astype(np.float32)) for row in found]
    return sorted(faces, key=lambda f: -f.area)


def dlib_landmarks(rgb: np.ndarray, face: Face, points: int = 68) -> np.ndarray:
    """dlib's 5- or 68-point landmarks of ``face`` as a ``[points, 2]`` float32 array."""
    shape = dlib_shape(rgb, face, points)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def dlib_shape(rgb: np.ndarray, face: Face, points: int = 5):
    """dlib's ``full_object_detection`` for ``face`` (5 or 68 points)."""
    return _predictor(points)(rgb, face.dlib_rect())
