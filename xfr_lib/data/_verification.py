"""Verification protocols: labelled pairs in person-disjoint folds, as in LFW's View 2.

A protocol is a deterministic function of (dataset, parameters, seed) and records those in
``params``; the same call gives the same protocol, on any machine with the same numpy.
:func:`make_verification_protocol` splits the identities into ``n_folds`` person-disjoint folds
and draws every pair inside one fold, so a threshold chosen on nine folds is tested on people
it has never seen. Protocols are saved in LFW's ``pairs.txt`` format (readable by other tools,
and by :func:`read_pairs_txt`, which reads LFW's own files too) with a JSON sidecar for the
parameters. The ORL protocol with seed 0 ships with xfr (:func:`shipped_protocol`).

Example:
    >>> from xfr_lib.data import load_dataset, make_verification_protocol
    >>> orl = load_dataset("orl")
    >>> protocol = make_verification_protocol(orl, seed=0)
    >>> len(protocol), protocol.n_folds, int(protocol.labels.sum())
    (600, 10, 300)
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from xfr_lib._io import atomic_write_text
from xfr_lib.data._datasets import FaceDataset, FaceImage, load_dataset, natural_key
from xfr_lib.errors import DatasetError, UnknownNameError

#: the 10 folds has 4 people, i.e. 4 x C(10,2) = 180 possible genuine pairs and 6 x 100 = 600
#: possible impostor pairs. 30 + 30 per fold gives 600 pairs (LFW View 2 is 6000), balanced
#: like LFW, about 7-8 genuine pairs per person per fold, and every image in about 3 pairs:
#: enough for a 10-fold accuracy and EER while keeping explanation/deletion experiments that
#: run over the whole protocol affordable on a CPU.
DEFAULT_N_FOLDS = 10
DEFAULT_GENUINE_PER_FOLD = 30
DEFAULT_IMPOSTOR_PER_FOLD = 30

_LFW_NUMBERED = re.compile(r"^(?P<name>.+)_(?P<num>\d+)\.[A-Za-z]+$")


# --- image numbering shared by pairs.txt reading and writing ------------------------------------


def _token(identity: str) -> str:
    """An identity as one whitespace-free token of pairs.txt (blanks become ``_``)."""
    return "_".join(identity.split())


def image_numbers(dataset: FaceDataset) -> list[int]:
    """The number each image has in pairs.txt files (1-based, per identity).

    If every file is named ``<identity>_<NNNN>.<ext>`` (LFW, CALFW), the number is ``NNNN``.
    Otherwise (ORL's ``s1/3.pgm``, your own folders) it is the image's 1-based position among
    the images of its identity in dataset order (natural order of file names): ORL's
    ``s1/10.pgm`` is ``s1 10`` and ``s1/2.pgm`` is ``s1 2``.
    """
    matches = [_LFW_NUMBERED.match(image.path.name) for image in dataset.images]
    if all(m is not None and m["name"] == _token(im.identity)
           for m, im in zip(matches, dataset.images, strict=True)):
        numbers = [int(m["num"]) for m in matches]
        keys = {(im.identity, n) for im, n in zip(dataset.images, numbers, strict=True)}
        if len(keys) == len(numbers):  # e.g. "x_1.jpg" and "x_01.jpg" would collide
            return numbers
    counter: dict[str, int] = {}
    numbers = []
    for image in dataset.images:
        counter[image.identity] = counter.get(image.identity, 0) + 1
        numbers.append(counter[image.identity])
    return numbers


def _token_table(dataset: FaceDataset) -> dict[str, str]:
    table: dict[str, str] = {}
    for identity in dataset.identities:
        tok = _token(identity)
        if tok in table and table[tok] != identity:
            raise DatasetError(
                f"identities {table[tok]!r} and {identity!r} of dataset {dataset.name!r} are the "
                f"same once blanks become '_', so pairs.txt cannot tell them apart; rename one"
            )
        table[tok] = identity
    return table


# --- verification --------------------------------------------------------------------------------


@dataclass
class VerificationProtocol:
    """Labelled image pairs in folds (LFW View 2 style).

    Attributes:
        dataset: name of the dataset whose image indices ``pairs`` refers to.
        pairs: ``[P, 2]`` int indices into ``dataset.images``.
        labels: ``[P]`` bool, True for a genuine (same identity) pair.
        folds: ``[P]`` int in ``0 .. n_folds-1``.
        params: how the protocol was made (seed, sizes, source file ...).
    """

    dataset: str
    pairs: np.ndarray
    labels: np.ndarray
    folds: np.ndarray
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pairs = np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2)
        self.labels = np.asarray(self.labels, dtype=bool).reshape(-1)
        self.folds = np.asarray(self.folds, dtype=np.int64).reshape(-1)
        if not len(self.pairs) == len(self.labels) == len(self.folds):
            raise DatasetError(
                f"protocol for {self.dataset!r} has {len(self.pairs)} pairs, "
                f"{len(self.labels)} labels and {len(self.folds)} folds; they must match"
            )

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def n_folds(self) -> int:
        """Number of folds (``params['n_folds']`` if recorded, else ``max(folds) + 1``)."""
        if "n_folds" in self.params:
            return int(self.params["n_folds"])
        return int(self.folds.max()) + 1 if len(self.folds) else 0

    def fold(self, k: int) -> np.ndarray:
        """Indices (into ``pairs``) of the pairs of fold ``k``."""
        return np.flatnonzero(self.folds == k)

    def validate(self, dataset: FaceDataset) -> None:
        """Check the protocol against ``dataset``: indices in range, labels match identities.

        Raises:
            DatasetError: naming the first offending pair.
        """
        n = len(dataset)
        if len(self.pairs) and (self.pairs.min() < 0 or self.pairs.max() >= n):
            raise DatasetError(
                f"protocol for {self.dataset!r} refers to image {self.pairs.max()} "
                f"but dataset {dataset.name!r} has {n}; load it with its own dataset"
            )
        for p, ((i, j), same) in enumerate(zip(self.pairs, self.labels, strict=True)):
            if (dataset.images[i].identity == dataset.images[j].identity) != bool(same):
                raise DatasetError(
                    f"pair {p} ({dataset.images[i].path.name}, {dataset.images[j].path.name}) is "
                    f"labelled {'genuine' if same else 'impostor'} but the identities "
                    f"{'differ' if same else 'are equal'}; the protocol does not fit this dataset"
                )

    def draw(self, n: int, seed: int = 0, genuine: bool | None = None,
             valid: np.ndarray | None = None) -> np.ndarray:
        """Indices of ``n`` distinct pairs drawn at random (seeded), in drawing order.

        Args:
            n: how many pairs.
            seed: seed of the draw.
            genuine: True: genuine pairs only; False: impostor pairs only; None: genuine and
                impostor in turn, genuine first.
            valid: ``[P]`` bool, pairs that may be drawn (e.g. both faces found).

        Raises:
            DatasetError: fewer pairs of a kind than asked for.
        """
        ok = np.ones(len(self), bool) if valid is None else np.asarray(valid, bool)
        kinds = [genuine] * n if genuine is not None else [k % 2 == 0 for k in range(n)]
        rng = np.random.default_rng(seed)
        pools = {g: list(rng.permutation(np.flatnonzero(ok & (self.labels == g))))
                 for g in (True, False)}
        for g in (True, False):
            if kinds.count(g) > len(pools[g]):
                raise DatasetError(f"{kinds.count(g)} {'genuine' if g else 'impostor'} pairs "
                                   f"asked for, the protocol has {len(pools[g])} usable ones")
        return np.array([int(pools[g].pop(0)) for g in kinds], dtype=np.int64)

    def pair_images(self, dataset: FaceDataset, p: int) -> tuple[FaceImage, FaceImage]:
        """The two images of pair ``p``."""
        i, j = self.pairs[p]
        return dataset.images[int(i)], dataset.images[int(j)]

    def to_frame(self, dataset: FaceDataset | None = None) -> pd.DataFrame:
        """One row per pair: ``a``, ``b`` (indices), ``same``, ``fold`` (+ paths/identities)."""
        frame = pd.DataFrame(
            {"a": self.pairs[:, 0], "b": self.pairs[:, 1], "same": self.labels, "fold": self.folds}
        )
        if dataset is not None:
            for col in ("a", "b"):
                frame[f"identity_{col}"] = [dataset.images[i].identity for i in frame[col]]
                frame[f"path_{col}"] = [str(dataset.images[i].path) for i in frame[col]]
        frame.index.name = "pair"
        return frame

    def save(self, path: Path | str, dataset: FaceDataset) -> Path:
        """Write the protocol in LFW ``pairs.txt`` format plus ``<path>.json`` (parameters).

        The header is ``n_folds<TAB>n`` (``n`` genuine and ``n`` impostor pairs per fold); when
        the two counts differ it is ``n_folds<TAB>n_genuine<TAB>n_impostor`` (an extension that
        :meth:`load` reads). Per fold, genuine lines ``name<TAB>i<TAB>j`` come first, then
        impostor lines ``name1<TAB>i<TAB>name2<TAB>j``; ``i``/``j`` are :func:`image_numbers`
        and names have blanks replaced by ``_``. Loading gives back the same pairs in the same
        order when the protocol lists each fold's genuine pairs first (as
        :func:`make_verification_protocol` does).

        Args:
            path: the pairs file to write.
            dataset: the dataset the indices refer to (for names and numbers).

        Raises:
            DatasetError: if the folds differ in size (pairs.txt cannot say so) or a genuine
                pair joins two identities.
        """
        path = Path(path)
        self.validate(dataset)
        numbers = image_numbers(dataset)
        _token_table(dataset)  # fails early on ambiguous names
        counts = {
            (int(np.sum(self.labels[self.folds == k])), int(np.sum(~self.labels[self.folds == k])))
            for k in range(self.n_folds)
        }
        if len(counts) != 1:
            raise DatasetError(
                f"cannot save protocol for {self.dataset!r} to {path}: its folds hold "
                f"different numbers of pairs {sorted(counts)}, which pairs.txt cannot "
                f"express; save it with to_frame().to_csv() instead"
            )
        ((n_gen, n_imp),) = counts
        header = (
            f"{self.n_folds}\t{n_gen}" if n_gen == n_imp else f"{self.n_folds}\t{n_gen}\t{n_imp}"
        )
        lines = [header]
        for k in range(self.n_folds):
            idx = self.fold(k)
            for want in (True, False):
                for p in idx[self.labels[idx] == want]:
                    a, b = (dataset.images[int(x)] for x in self.pairs[p])
                    na, nb = numbers[int(self.pairs[p, 0])], numbers[int(self.pairs[p, 1])]
                    if want:
                        lines.append(f"{_token(a.identity)}\t{na}\t{nb}")
                    else:
                        lines.append(f"{_token(a.identity)}\t{na}\t{_token(b.identity)}\t{nb}")
        atomic_write_text(path, "\n".join(lines) + "\n")
        sidecar = {"dataset": self.dataset, "params": self.params}
        atomic_write_text(_sidecar(path), json.dumps(sidecar, indent=1, sort_keys=True,
                                                     default=str) + "\n")
        return path

    @classmethod
    def load(cls, path: Path | str, dataset: FaceDataset) -> VerificationProtocol:
        """Read a protocol written by :meth:`save` (or any LFW-format pairs file).

        Parameters come from ``<path>.json`` when it exists.

        Raises:
            DatasetError: for a malformed file, an image not in ``dataset``, or a sidecar that
                names another dataset.
        """
        path = Path(path)
        protocol = read_pairs_txt(path, dataset)
        sidecar = _sidecar(path)
        if sidecar.is_file():
            try:
                saved = json.loads(sidecar.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"{sidecar} is not valid JSON ({exc}); delete it or restore it"
                ) from None
            if saved.get("dataset") not in (None, dataset.name):
                raise DatasetError(
                    f"{path} was made for dataset {saved['dataset']!r}, not "
                    f"{dataset.name!r}; load it with that dataset"
                )
            protocol.params = saved.get("params", {})
            protocol.dataset = saved.get("dataset") or dataset.name
        return protocol


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _split_folds(identities: list[str], n_folds: int, rng: np.random.Generator) -> list[list[str]]:
    order = [identities[i] for i in rng.permutation(len(identities))]
    return [sorted(order[k::n_folds], key=natural_key) for k in range(n_folds)]


def _draw_genuine(
    dataset: FaceDataset, people: list[str], n: int, rng: np.random.Generator, fold: int
) -> list[tuple[int, int]]:
    """``n`` distinct same-identity pairs, spread evenly over the fold's people.

    Each person's possible pairs are shuffled; people are visited round-robin in a shuffled
    order, each giving its next pair, so no one dominates the genuine pairs.
    """
    queues = []
    for person in people:
        cand = list(itertools.combinations(dataset.indices_of(person), 2))
        queues.append([cand[i] for i in rng.permutation(len(cand))])
    available = sum(len(q) for q in queues)
    if available < n:
        raise DatasetError(
            f"fold {fold} of dataset {dataset.name!r} ({len(people)} people) has only {available} "
            f"genuine pairs, {n} requested; lower genuine_per_fold or n_folds"
        )
    order = [queues[i] for i in rng.permutation(len(queues))]
    chosen: list[tuple[int, int]] = []
    depth = 0
    while len(chosen) < n:
        for q in order:
            if depth < len(q):
                chosen.append(q[depth])
                if len(chosen) == n:
                    break
        depth += 1
    return chosen


def _draw_impostor(
    dataset: FaceDataset, people: list[str], n: int, rng: np.random.Generator, fold: int
) -> list[tuple[int, int]]:
    """``n`` distinct pairs of two people of the fold: a random pair of people, then one
    random image of each; duplicates are redrawn. The first image is of the person who comes
    first in natural order (as in LFW's pairs.txt)."""
    members = [dataset.indices_of(p) for p in people]
    sizes = np.array([len(m) for m in members])
    available = int((sizes.sum() ** 2 - (sizes**2).sum()) // 2)
    if len(people) < 2 or available < n:
        raise DatasetError(
            f"fold {fold} of dataset {dataset.name!r} ({len(people)} people) has only {available} "
            f"impostor pairs, {n} requested; lower impostor_per_fold or n_folds"
        )
    if n > available // 2:  # close to exhaustive: enumerate instead of rejection sampling
        cand = [
            (i, j)
            for a, b in itertools.combinations(range(len(people)), 2)
            for i in members[a]
            for j in members[b]
        ]
        return [cand[k] for k in rng.permutation(len(cand))[:n]]
    chosen: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    while len(chosen) < n:
        a, b = sorted(rng.choice(len(people), size=2, replace=False).tolist())
        pair = (int(rng.choice(members[a])), int(rng.choice(members[b])))
        if pair not in seen:
            seen.add(pair)
            chosen.append(pair)
    return chosen


def make_verification_protocol(
    dataset: FaceDataset,
    n_folds: int = DEFAULT_N_FOLDS,
    genuine_per_fold: int = DEFAULT_GENUINE_PER_FOLD,
    impostor_per_fold: int = DEFAULT_IMPOSTOR_PER_FOLD,
    seed: int = 0,
) -> VerificationProtocol:
    """An LFW View 2 style verification protocol on any labelled dataset.

    Identities are shuffled (seeded) and dealt into ``n_folds`` person-disjoint folds (sizes
    differ by at most one). In each fold, ``genuine_per_fold`` distinct pairs of two different
    images of one person (spread round-robin over the fold's people) and ``impostor_per_fold``
    distinct pairs of images of two different people of that fold are drawn. No unordered pair
    occurs twice. Pairs are listed fold by fold, genuine first.

    Defaults (10 folds, 30 + 30 pairs per fold, 600 pairs) are chosen for ORL: see
    :data:`DEFAULT_GENUINE_PER_FOLD`.

    Args:
        dataset: the labelled images.
        n_folds: number of person-disjoint folds.
        genuine_per_fold: same-identity pairs per fold.
        impostor_per_fold: different-identity pairs per fold.
        seed: seed of every random choice.

    Raises:
        DatasetError: if there are fewer identities than folds or a fold cannot supply the
            requested pairs.
    """
    identities = dataset.identities
    if n_folds < 1 or genuine_per_fold < 0 or impostor_per_fold < 0:
        raise DatasetError(
            f"n_folds={n_folds}, genuine_per_fold={genuine_per_fold}, "
            f"impostor_per_fold={impostor_per_fold}: use n_folds >= 1 and counts >= 0"
        )
    if len(identities) < n_folds:
        raise DatasetError(
            f"dataset {dataset.name!r} has {len(identities)} identities, fewer than "
            f"n_folds={n_folds}; lower n_folds"
        )
    rng = np.random.default_rng(seed)
    groups = _split_folds(identities, n_folds, rng)
    pairs, labels, folds = [], [], []
    for k, people in enumerate(groups):
        genuine = (
            _draw_genuine(dataset, people, genuine_per_fold, rng, k) if genuine_per_fold else []
        )
        impostor = (
            _draw_impostor(dataset, people, impostor_per_fold, rng, k) if impostor_per_fold else []
        )
        pairs += genuine + impostor
        labels += [True] * len(genuine) + [False] * len(impostor)
        folds += [k] * (len(genuine) + len(impostor))
    params = {
        "kind": "verification",
        "method": "lfw-view2-style",
        "n_folds": n_folds,
        "genuine_per_fold": genuine_per_fold,
        "impostor_per_fold": impostor_per_fold,
        "seed": seed,
        "dataset_size": len(dataset),
        "n_identities": len(identities),
        "fold_identities": groups,
    }
    return VerificationProtocol(dataset.name, pairs, labels, folds, params)



# --- reading pairs.txt -----------------------------------------------------------------------

def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"pairs file {path} not found; pass the path of the protocol file")
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path} is not a UTF-8 text file ({exc.reason}); is it the pairs file?"
        ) from None


def _int(text: str, path: Path, lineno: int, line: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DatasetError(
            f"{path} line {lineno}: {line.strip()!r} is malformed ({text!r} is not "
            f"an integer); restore the original file"
        ) from None


def read_pairs_txt(path: Path | str, dataset: FaceDataset) -> VerificationProtocol:
    """Read a pairs file in LFW's format (LFW's own, or one :meth:`VerificationProtocol.save`
    wrote) into a protocol on ``dataset``.

    Formats: ``pairs.txt`` (header ``10 300``: 10 folds, each 300 genuine lines
    ``name n1 n2`` then 300 impostor lines ``name1 n1 name2 n2``), ``pairsDevTrain.txt`` /
    ``pairsDevTest.txt`` (header ``1100`` / ``500``: one fold), and the header
    ``n_folds n_genuine n_impostor`` written by :meth:`VerificationProtocol.save`. Image
    numbers are resolved with :func:`image_numbers`; names may use ``_`` for blanks. Blank
    lines are skipped; fields are separated by any whitespace.

    Raises:
        DatasetError: naming file and line for a malformed line or wrong count, or naming
            the image for a pair that refers to an image not in ``dataset``.
    """
    path = Path(path)
    lines = [(n, line) for n, line in enumerate(_read_lines(path), start=1) if line.strip()]
    if not lines:
        raise DatasetError(f"{path} is empty; expected an LFW pairs file")
    lineno, first = lines[0]
    head = [_int(t, path, lineno, first) for t in first.split()]
    if len(head) == 1:
        n_folds, n_gen, n_imp = 1, head[0], head[0]
    elif len(head) == 2:
        n_folds, n_gen, n_imp = head[0], head[1], head[1]
    elif len(head) == 3:
        n_folds, n_gen, n_imp = head
    else:
        raise DatasetError(
            f"{path} line {lineno}: header {first.strip()!r} is malformed; expected "
            f"'n_folds n_pairs' (pairs.txt) or 'n_pairs' (pairsDevTrain/DevTest.txt)"
        )
    body = lines[1:]
    expected = n_folds * (n_gen + n_imp)
    if len(body) != expected:
        raise DatasetError(
            f"{path}: header says {n_folds} folds x ({n_gen} + {n_imp}) = {expected} "
            f"pairs but the file has {len(body)} pair lines; the file is truncated or "
            f"not an LFW pairs file"
        )
    tokens = _token_table(dataset)
    numbers = image_numbers(dataset)
    where = {(dataset.images[i].identity, numbers[i]): i for i in range(len(dataset))}

    def lookup(name: str, num: int, lineno: int) -> int:
        identity = tokens.get(name, name)
        if (identity, num) not in where:
            raise DatasetError(
                f"{path} line {lineno}: image {name} #{num} ({name}_{num:04d}) is not "
                f"in dataset {dataset.name!r} at {dataset.root}; is the dataset "
                f"complete and the right one (variant) for this pairs file?"
            )
        return where[(identity, num)]

    pairs, labels, folds = [], [], []
    it = iter(body)
    for k in range(n_folds):
        for same, count in ((True, n_gen), (False, n_imp)):
            for _ in range(count):
                lineno, line = next(it)
                f = line.split()
                if same and len(f) == 3:
                    a = lookup(f[0], _int(f[1], path, lineno, line), lineno)
                    b = lookup(f[0], _int(f[2], path, lineno, line), lineno)
                elif not same and len(f) == 4:
                    a = lookup(f[0], _int(f[1], path, lineno, line), lineno)
                    b = lookup(f[2], _int(f[3], path, lineno, line), lineno)
                else:
                    shape = "'name n1 n2'" if same else "'name1 n1 name2 n2'"
                    raise DatasetError(
                        f"{path} line {lineno}: {line.strip()!r} is malformed; fold "
                        f"{k + 1} expects a {'genuine' if same else 'impostor'} line "
                        f"{shape} here"
                    )
                pairs.append((a, b))
                labels.append(same)
                folds.append(k)
    params = {
        "kind": "verification",
        "source": str(path),
        "format": "lfw-pairs",
        "n_folds": n_folds,
        "genuine_per_fold": n_gen,
        "impostor_per_fold": n_imp,
    }
    return VerificationProtocol(dataset.name, pairs, labels, folds, params)



# --- protocol files shipped with xfr -----------------------------------------------------------

#: Folder of the protocol files shipped with xfr (``<dataset>_pairs.txt`` + ``.json``).
PROTOCOL_DIR = Path(__file__).with_name("protocols")

#: Shipped protocols: name -> (dataset, make_verification_protocol keyword arguments).
SHIPPED = {"orl": ("orl", {"seed": 0})}


def shipped_protocol(name: str, dataset: FaceDataset | None = None) -> VerificationProtocol:
    """A verification protocol file shipped with xfr (``list(SHIPPED)``).

    The files are :func:`make_verification_protocol` with the defaults and seed 0, written by
    :func:`write_shipped_protocols`; shipping them keeps results comparable even if numpy's
    random streams change. ``orl``: 10 folds x (30 + 30) pairs on ORL.

    Args:
        name: one of ``SHIPPED``.
        dataset: the dataset it refers to (default: ``load_dataset(name)``).
    """
    if name not in SHIPPED:
        raise UnknownNameError("shipped protocol", name, sorted(SHIPPED))
    if dataset is None:
        dataset = load_dataset(SHIPPED[name][0])
    return VerificationProtocol.load(PROTOCOL_DIR / f"{name}_pairs.txt", dataset)


def write_shipped_protocols(folder: Path | str = PROTOCOL_DIR) -> list[Path]:
    """(Re)generate the shipped protocol files: ``python -m xfr_lib.data._verification``."""
    written = []
    for name, (dataset_name, kwargs) in SHIPPED.items():
        dataset = load_dataset(dataset_name)
        protocol = make_verification_protocol(dataset, **kwargs)
        written.append(protocol.save(Path(folder) / f"{name}_pairs.txt", dataset))
    return written


if __name__ == "__main__":
    for written_path in write_shipped_protocols():
        print(written_path)
