"""Faces: reading photos, finding faces, aligning chips, landmarks, pose and occluders.

    from xfr_lib.faces import align_face, list_faces
    face = align_face("photo.jpg", "dlib_chip", (150, 150), face=0)   # the largest face
    face.chip, face.landmarks                                         # HxWx3 uint8, [68, 2]

Modules (private; everything public is exported here): ``_image`` (reading), ``_detect``
(YuNet, dlib landmarks), ``_align`` (the alignments, choosing a face), ``_chips`` (chip <->
tensor, the chip cache), ``_regions`` (facial regions and map shares), ``_occlusion``
(synthetic occluders), ``_pose`` (a yaw/roll proxy).
"""

from xfr_lib.faces._align import (
    ALIGNMENTS,
    ARCFACE_TEMPLATE,
    AlignedFace,
    FaceChoice,
    align_face,
    alignment_settings,
    choose_face,
    list_faces,
    similarity_transform,
)
from xfr_lib.faces._chips import (
    CACHE_VERSION,
    aligned_chip,
    chip_cache_key,
    chip_to_tensor,
    tensor_to_chip,
)
from xfr_lib.faces._detect import DETECTOR, LANDMARK_MODELS, Face, detect_faces, dlib_landmarks
from xfr_lib.faces._image import MIN_SIDE, ImageLike, describe, load_image
from xfr_lib.faces._occlusion import (
    OCCLUDER_FILLS,
    OCCLUDER_KINDS,
    occlude,
    occluder_content,
    occluder_region,
)
from xfr_lib.faces._pose import mirror_landmarks, pose_table, roll, yaw
from xfr_lib.faces._regions import (
    OUTSIDE,
    REGION_GROUPS,
    REGIONS,
    FaceRegions,
    chip_landmarks,
    face_regions,
    mass_in_region,
    mass_ratio_to_chance,
    region_shares,
)

__all__ = [
    "ALIGNMENTS", "ARCFACE_TEMPLATE", "CACHE_VERSION", "DETECTOR", "LANDMARK_MODELS",
    "MIN_SIDE", "OCCLUDER_FILLS", "OCCLUDER_KINDS", "OUTSIDE", "REGIONS", "REGION_GROUPS",
    "AlignedFace", "Face", "FaceChoice", "FaceRegions", "ImageLike", "align_face",
    "aligned_chip", "alignment_settings", "chip_cache_key", "chip_landmarks", "chip_to_tensor",
    "choose_face", "describe", "detect_faces", "dlib_landmarks", "face_regions", "list_faces",
    "load_image", "mass_in_region", "mass_ratio_to_chance", "mirror_landmarks", "occlude",
    "occluder_content", "occluder_region", "pose_table", "region_shares", "roll",
    "similarity_transform", "tensor_to_chip", "yaw",
]
