"""Identification protocols: a gallery and its probes, optionally with distractors.

:func:`make_identification_protocol` puts ``gallery_per_identity`` seeded images of each
identity in the gallery and the rest in the probe set, optionally appending a distractor
dataset (people who are never probed) to the gallery.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xfr_lib._io import atomic_write_text
from xfr_lib.data._datasets import FaceDataset, FaceImage, check_disjoint
from xfr_lib.errors import DatasetError


@dataclass
class IdentificationProtocol:
    """A closed-set gallery and its probes, optionally with distractors in the gallery.

    The gallery is ``dataset.images[gallery]`` followed by ``distractors`` (images of people
    who are never probed, kept as :class:`FaceImage` so the protocol does not need their
    dataset later). :meth:`gallery_images` returns that combined list; gallery position ``g``
    in scores and rankings refers to it.

    Attributes:
        dataset: name of the dataset whose indices ``gallery`` and ``probes`` refer to.
        gallery: int indices of the dataset's gallery images.
        probes: int indices of the probe images (disjoint from ``gallery``).
        distractors: extra gallery images appended after the dataset's.
        params: how it was made (seed, gallery_per_identity, distractor dataset ...).
    """

    dataset: str
    gallery: np.ndarray
    probes: np.ndarray
    distractors: list[FaceImage] = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.gallery = np.asarray(self.gallery, dtype=np.int64).reshape(-1)
        self.probes = np.asarray(self.probes, dtype=np.int64).reshape(-1)

    def gallery_images(self, dataset: FaceDataset) -> list[FaceImage]:
        """The whole gallery: the dataset's gallery images, then the distractors."""
        return [dataset.images[int(i)] for i in self.gallery] + list(self.distractors)

    def gallery_identities(self, dataset: FaceDataset) -> list[str]:
        """Identity of each gallery position."""
        return [im.identity for im in self.gallery_images(dataset)]

    def probe_images(self, dataset: FaceDataset) -> list[FaceImage]:
        """The probe images, in protocol order."""
        return [dataset.images[int(i)] for i in self.probes]

    def probe_identities(self, dataset: FaceDataset) -> list[str]:
        return [im.identity for im in self.probe_images(dataset)]

    def true_match(self, dataset: FaceDataset) -> np.ndarray:
        """``[n_probes, n_gallery]`` bool: gallery position has the probe's identity."""
        gallery = np.array(self.gallery_identities(dataset), dtype=object)
        probes = np.array(self.probe_identities(dataset), dtype=object)
        return probes[:, None] == gallery[None, :]

    def save(self, path: Path | str, dataset: FaceDataset) -> Path:
        """Write the protocol as JSON (dataset-relative paths, distractors with identities)."""
        path = Path(path)

        def rel(p: Path, root: Path) -> str:
            try:
                return p.relative_to(root).as_posix()
            except ValueError:
                return str(p)

        data = {
            "dataset": self.dataset,
            "gallery": [rel(dataset.images[int(i)].path, dataset.root) for i in self.gallery],
            "probes": [rel(dataset.images[int(i)].path, dataset.root) for i in self.probes],
            "distractors": [
                {"path": str(im.path), "identity": im.identity} for im in self.distractors
            ],
            "params": self.params,
        }
        return atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False,
                                                  default=str) + "\n")

    @classmethod
    def load(cls, path: Path | str, dataset: FaceDataset) -> IdentificationProtocol:
        """Read a protocol written by :meth:`save`, resolving paths against ``dataset``."""
        path = Path(path)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            where = {}
            for i, im in enumerate(dataset.images):
                where[str(im.path)] = i
                try:
                    where[im.path.relative_to(dataset.root).as_posix()] = i
                except ValueError:
                    pass

            def find(p: str) -> int:
                if p not in where:
                    raise DatasetError(
                        f"{path}: image {p!r} is not in dataset {dataset.name!r} at "
                        f"{dataset.root}; load the protocol with its own dataset"
                    )
                return where[p]

            return cls(
                dataset=data["dataset"],
                gallery=[find(p) for p in data["gallery"]],
                probes=[find(p) for p in data["probes"]],
                distractors=[
                    FaceImage(Path(d["path"]), d["identity"]) for d in data["distractors"]
                ],
                params=data.get("params", {}),
            )
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(
                f"{path} is not an identification protocol file ({exc}); write it "
                f"with IdentificationProtocol.save"
            ) from None


def make_identification_protocol(
    dataset: FaceDataset,
    gallery_per_identity: int = 1,
    seed: int = 0,
    distractors: FaceDataset | None = None,
    n_distractors: int | None = None,
) -> IdentificationProtocol:
    """Split every identity into gallery and probe images; append distractors to the gallery.

    For each identity (natural order), ``gallery_per_identity`` images chosen with the seeded
    generator go to the gallery and the rest become probes. An identity with no more images
    than that (e.g. one photo) goes wholly to the gallery, so every probe has its mate there.

    Args:
        dataset: the labelled images.
        gallery_per_identity: gallery images per identity (>= 1).
        seed: seed of every random choice.
        distractors: a dataset of other people appended to the gallery (never probed).
        n_distractors: use only this many distractor images (a seeded sample, kept in
            dataset order); default all.

    Raises:
        DatasetError: if a distractor identity is also a dataset identity (compared after
            Unicode/case normalisation), or for impossible sizes.
    """
    if gallery_per_identity < 1:
        raise DatasetError(f"gallery_per_identity={gallery_per_identity}; use 1 or more")
    rng = np.random.default_rng(seed)
    gallery: list[int] = []
    probes: list[int] = []
    for identity in dataset.identities:
        idx = dataset.indices_of(identity)
        if len(idx) <= gallery_per_identity:
            gallery += idx
            continue
        chosen = set(rng.choice(len(idx), size=gallery_per_identity, replace=False).tolist())
        gallery += [i for k, i in enumerate(idx) if k in chosen]
        probes += [i for k, i in enumerate(idx) if k not in chosen]
    extra: list[FaceImage] = []
    params: dict[str, Any] = {
        "kind": "identification",
        "gallery_per_identity": gallery_per_identity,
        "seed": seed,
        "dataset_size": len(dataset),
        "n_identities": len(dataset.identities),
    }
    if distractors is not None:
        check_disjoint(dataset, distractors)
        keep: Sequence[int] = range(len(distractors))
        if n_distractors is not None:
            if not 0 <= n_distractors <= len(distractors):
                raise DatasetError(
                    f"n_distractors={n_distractors} but dataset {distractors.name!r} "
                    f"has {len(distractors)} images; use 0..{len(distractors)}"
                )
            keep = sorted(rng.choice(len(distractors), size=n_distractors, replace=False).tolist())
        extra = [distractors.images[i] for i in keep]
        params.update(
            {
                "distractors": distractors.name,
                "n_distractors": len(extra),
                "distractor_root": str(distractors.root),
            }
        )
    return IdentificationProtocol(
        dataset=dataset.name, gallery=gallery, probes=probes, distractors=extra, params=params
    )


