"""Facial regions from the 68 landmarks, and how a saliency map's mass falls on them.

Words about a map ("the eyes", "the lower face") must come from measurements, not from looking
at one figure, so every face chip is divided into named regions that do not overlap and,
together with ``"outside the face"`` (hair, ears, neck, background), cover the chip:

* ``forehead``: from the top of the brows up by ``forehead`` times the brow-to-nose-base
  distance (the 68 points stop at the brows, so its upper edge is an estimate);
* ``left brow``, ``right brow``: a band around each brow's five points;
* ``left eye``, ``right eye``: each eye's outline enlarged around its centre (lids included);
* ``nose``: from between the brows down the bridge to and around the nostrils;
* ``mouth``: the outer lip outline, enlarged;
* ``chin``: the face below the mouth, down to the jaw line;
* ``left cheek``, ``right cheek``: the rest of the face (temples, cheeks, the sides of the
  nose and mouth), split by the line from the top of the nose to the chin.

"Left" and "right" are as seen in the image (the subject's right eye is the ``left eye``).
The face outline is the jaw line (points 0-16) closed over the forehead. Directions follow the
face's roll (the eye line), so the regions fit a tilted face. Regions are painted in the order
cheeks, forehead, chin, brows, nose, mouth, eyes: where two overlap, the later (smaller,
more specific) one wins.

:func:`region_shares` gives, per region, its share of the chip's area, its share of a map's
mass, and their ratio (1 = no more than a map spread evenly; above 1 = concentrated there);
:data:`REGION_GROUPS` merges left and right into the words people use ("eyes", "cheeks").

Example:
    >>> from xfr_lib.data import load_dataset
    >>> from xfr_lib.faces import align_face
    >>> face = align_face(load_dataset("wild")[0].path, "arcface_5pt", (112, 112))
    >>> regions = face_regions(face.landmarks, face.chip.shape[:2])
    >>> [regions.name_at(int(y), int(x)) for x, y in face.landmarks[[30, 37, 44, 57]]]
    ['nose', 'left eye', 'right eye', 'mouth']
    >>> regions.name_at(0, 0)
    'outside the face'
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from xfr_lib.errors import XfrError

OUTSIDE = "outside the face"
#: Region names, in painting order (later ones win where they overlap).
REGIONS = ("left cheek", "right cheek", "forehead", "chin", "left brow", "right brow", "nose",
           "mouth", "left eye", "right eye")
#: Coarse regions: the words a sentence uses, each the union of some regions.
REGION_GROUPS = {
    "eyes": ("left eye", "right eye"),
    "brows": ("left brow", "right brow"),
    "nose": ("nose",),
    "mouth": ("mouth",),
    "cheeks": ("left cheek", "right cheek"),
    "forehead": ("forehead",),
    "chin": ("chin",),
    OUTSIDE: (OUTSIDE,),
}

# 68-point indices (iBUG 300-W).
_JAW = list(range(17))
_LEFT_BROW, _RIGHT_BROW = list(range(17, 22)), list(range(22, 27))
_LEFT_EYE, _RIGHT_EYE = list(range(36, 42)), list(range(42, 48))
_NOSE_TOP, _NOSE_TIP, _CHIN = 27, 30, 8
_NOSTRILS = [31, 32, 33, 34, 35]
_OUTER_LIP = list(range(48, 60))

@dataclass(frozen=True)
class FaceRegions:
    """The regions of one chip.

    Attributes:
        labels: ``[H, W]`` int: index into ``names`` of the region each pixel belongs to.
        names: ``(OUTSIDE, *REGIONS)``: label 0 is outside the face.
    """

    labels: np.ndarray
    names: tuple[str, ...] = (OUTSIDE, *REGIONS)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.labels.shape)  # type: ignore[return-value]

    def mask(self, name: str) -> np.ndarray:
        """The boolean ``[H, W]`` mask of a region, or of a group of :data:`REGION_GROUPS`."""
        members = REGION_GROUPS.get(name, (name,))
        unknown = [m for m in members if m not in self.names]
        if unknown:
            raise XfrError(f"unknown facial region {name!r}; choose one of "
                           f"{', '.join(self.names)} or {', '.join(REGION_GROUPS)}")
        return np.isin(self.labels, [self.names.index(m) for m in members])

    def name_at(self, row: int, col: int) -> str:
        """The region of one pixel."""
        return self.names[int(self.labels[row, col])]


def _check(landmarks: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (68, 2):
        raise XfrError(f"landmarks must be an array [68, 2] in chip coordinates (x, y), got "
                       f"shape {list(pts.shape)}; pass AlignedFace.landmarks or "
                       f"EmbeddingSet.landmarks[i]")
    if not np.isfinite(pts).all():
        raise XfrError("landmarks contain NaN (no face was found in that image); use only "
                       "images whose EmbeddingSet.ok is True")
    return pts


def _fill(canvas: np.ndarray, points: np.ndarray, value: int,
          within: np.ndarray | None = None) -> None:
    """Paint a polygon (sub-pixel vertices) with ``value``, only inside ``within`` if given."""
    layer = np.zeros(canvas.shape, np.uint8)
    cv2.fillPoly(layer, [np.round(np.asarray(points) * 16).astype(np.int32)], 1,
                 lineType=cv2.LINE_8, shift=4)
    hit = layer.astype(bool) if within is None else layer.astype(bool) & within
    canvas[hit] = value


def _scaled(points: np.ndarray, along: float, across: float, u: np.ndarray) -> np.ndarray:
    """Points scaled about their centre by ``along`` the eye line ``u`` and ``across`` it."""
    c = points.mean(0)
    d = points - c
    n = np.array([-u[1], u[0]])
    return c + np.outer(d @ u, u) * along + np.outer(d @ n, n) * across


def face_regions(landmarks: np.ndarray, shape: tuple[int, int], *, forehead: float = 0.8,
                 brow_band: float = 0.12) -> FaceRegions:
    """The facial regions of a chip from its 68 landmarks (see the module doc).

    Args:
        landmarks: ``[68, 2]`` dlib landmarks in chip coordinates (x, y).
        shape: ``(H, W)`` of the chip.
        forehead: forehead height as a multiple of the distance from the brows to the base
            of the nose.
        brow_band: half the height of a brow's band, as a multiple of the distance between
            the eye centres.
    """
    pts = _check(landmarks)
    h, w = int(shape[0]), int(shape[1])
    left_eye, right_eye = pts[_LEFT_EYE].mean(0), pts[_RIGHT_EYE].mean(0)
    d = float(np.linalg.norm(right_eye - left_eye))
    if d <= 0:
        raise XfrError("the two eye centres coincide; these are not face landmarks")
    u = (right_eye - left_eye) / d  # along the eye line, image left -> right
    up = np.array([u[1], -u[0]])  # towards the top of the head (image y points down)
    brows = pts[_LEFT_BROW + _RIGHT_BROW]
    brow_to_nose = float(np.abs((brows.mean(0) - pts[_NOSTRILS].mean(0)) @ up))
    top = brows + up * (forehead * brow_to_nose)  # the forehead's estimated upper edge
    band = brow_band * d

    labels = np.zeros((h, w), np.int16)
    code = {name: k for k, name in enumerate((OUTSIDE, *REGIONS))}
    face = np.zeros((h, w), np.int16)
    _fill(face, np.vstack([pts[_JAW], top[::-1]]), 1)
    inside = face.astype(bool)

    # Cheeks: the whole face, split by the line from the top of the nose to the chin.
    labels[inside] = code["left cheek"]
    yy, xx = np.mgrid[0:h, 0:w]
    a, b = pts[_NOSE_TOP], pts[_CHIN]
    side = (b[0] - a[0]) * (yy - a[1]) - (b[1] - a[1]) * (xx - a[0])
    labels[inside & (side < 0)] = code["right cheek"]
    # Forehead: above the brows' band; chin: below the mouth.
    _fill(labels, np.vstack([brows[:5] + up * band, brows[5:] + up * band, top[::-1]]),
          code["forehead"], inside)
    lip = pts[_OUTER_LIP]
    height = (np.stack([xx, yy], -1).reshape(-1, 2) - lip.mean(0)) @ up
    below_mouth = height.reshape(h, w) < float(((lip - lip.mean(0)) @ up).min()) - 0.05 * d
    labels[inside & below_mouth] = code["chin"]
    for name, idx in (("left brow", _LEFT_BROW), ("right brow", _RIGHT_BROW)):
        brow = pts[idx]
        _fill(labels, np.vstack([brow + up * band, brow[::-1] - up * band]), code[name])
    # The nose reaches up between the brows, to the top of their band.
    glabella = (pts[21] + pts[22]) / 2 + up * band
    nostrils = pts[_NOSTRILS]
    wing = 0.08 * d
    _fill(labels, np.vstack([glabella - u * 0.15 * d, pts[_NOSE_TOP] - u * 0.15 * d,
                             nostrils[0] - u * wing, nostrils[1:4] - up * 0.06 * d,
                             nostrils[4] + u * wing, pts[_NOSE_TOP] + u * 0.15 * d,
                             glabella + u * 0.15 * d]), code["nose"])
    _fill(labels, _scaled(lip, 1.2, 1.35, u), code["mouth"])
    for name, idx in (("left eye", _LEFT_EYE), ("right eye", _RIGHT_EYE)):
        _fill(labels, _scaled(pts[idx], 1.5, 2.6, u), code[name])
    return FaceRegions(labels.astype(np.int16))


def _check_map(saliency_map: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    s = np.asarray(saliency_map, dtype=np.float64)
    if s.ndim != 2 or s.shape != tuple(shape):
        raise XfrError(f"saliency map {list(s.shape)} and regions {list(shape)} must be the "
                       f"same HxW shape (maps at chip resolution)")
    if not np.isfinite(s).all():
        raise XfrError("the saliency map contains NaN or inf")
    if (s < 0).any():
        raise XfrError("mass needs a non-negative map (a similarity or dissimilarity map, not "
                       "a signed one); pass one of the two parts")
    return s


def mass_in_region(saliency_map: np.ndarray, region_mask: np.ndarray) -> float:
    """Share of a non-negative saliency map's total mass that lies inside a region.

    Args:
        saliency_map: ``HxW`` non-negative map.
        region_mask: ``HxW`` boolean region (e.g. an occluder's ground truth).

    Returns:
        ``sum(map[region]) / sum(map)`` in [0, 1]; NaN when the map is all zero.
    """
    r = np.asarray(region_mask, dtype=bool)
    s = _check_map(saliency_map, r.shape)
    total = s.sum()
    if total == 0:
        return float("nan")
    return float(s[r].sum() / total)


def mass_ratio_to_chance(saliency_map: np.ndarray, region_mask: np.ndarray) -> float:
    """:func:`mass_in_region` divided by the region's share of the image area.

    1.0 is what a uniform map scores; the maximum, for a map that lives only inside the
    region, is ``1 / area share``.

    Args:
        saliency_map: ``HxW`` non-negative map.
        region_mask: ``HxW`` boolean region.
    """
    r = np.asarray(region_mask, dtype=bool)
    area = r.mean()
    if area == 0:
        raise XfrError("the region is empty (no pixel is True); mass ratio to chance undefined")
    return mass_in_region(saliency_map, r) / float(area)


def region_shares(saliency_map: np.ndarray, regions: FaceRegions,
                  grouped: bool = True) -> pd.DataFrame:
    """How a non-negative map's mass falls on the facial regions of its chip.

    Args:
        saliency_map: ``[H, W]`` non-negative map (a similarity or dissimilarity map).
        regions: the chip's :func:`face_regions`.
        grouped: report :data:`REGION_GROUPS` ("eyes", "cheeks", ...) instead of regions.

    Returns:
        One row per region: ``region``, ``area`` (share of the chip), ``mass`` (share of the
        map's total; NaN for an all-zero map) and ``ratio`` (mass / area), in the order of
        :data:`REGION_GROUPS` (or ``regions.names``).
    """
    s = _check_map(saliency_map, regions.shape)
    total = s.sum()
    names = list(REGION_GROUPS) if grouped else list(regions.names)
    rows = []
    for name in names:
        m = regions.mask(name)
        area = float(m.mean())
        mass = float(s[m].sum() / total) if total > 0 else float("nan")
        rows.append({"region": name, "area": area, "mass": mass,
                     "ratio": mass / area if area > 0 else float("nan")})
    return pd.DataFrame(rows, columns=["region", "area", "mass", "ratio"])


def chip_landmarks(chip: np.ndarray) -> np.ndarray:
    """The 68 landmarks of the face in an aligned chip, found in the chip itself.

    For explanations made from chips (their ``AlignedFace.landmarks`` are not kept): the chip's
    face is detected again (YuNet) and dlib's 68-point predictor placed on it. On 51 chips of
    both models' alignments (wild and ORL) all were found, 0.75 px from the landmarks carried
    through the alignment on average.

    Args:
        chip: ``[H, W, 3]`` uint8 RGB aligned chip.

    Returns:
        ``[68, 2]`` float32 (x, y) in chip coordinates.
    """
    from xfr_lib.faces._detect import detect_faces, dlib_landmarks

    rgb = np.ascontiguousarray(np.asarray(chip, dtype=np.uint8))
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise XfrError(f"a chip must be an HxWx3 uint8 image, got shape {list(rgb.shape)}")
    faces = detect_faces(rgb)
    if not faces:
        raise XfrError("no face found in the aligned chip, so its facial regions are unknown; "
                       "pass the landmarks from model.align_face(image).landmarks")
    return dlib_landmarks(rgb, max(faces, key=lambda f: f.area), 68)
