"""Seeded, recorded splits: members / non-members / test, and LiRA-style universes.

* **members**: the private training set the defense sees;
* **non-members**: held out from the same distribution, for the audit;
* **test**: utility only (the dataset's test set when it has one, else carved out
  of the training pool).

The three are disjoint and saved as index arrays plus a SHA-256 over the indices and
the dataset fingerprint, so any later step can check it uses the very same split.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

import numpy as np

from mi_defense.errors import UserError
from mi_defense.io import write_json


@dataclass(frozen=True)
class Split:
    members: np.ndarray
    nonmembers: np.ndarray
    test: np.ndarray
    test_source: str  # "test": indices into x_test; "train": indices into x_train
    seed: int
    dataset_fingerprint: str

    @property
    def hash(self) -> str:
        h = hashlib.sha256()
        h.update(self.dataset_fingerprint.encode())
        h.update(self.test_source.encode())
        for a in (self.members, self.nonmembers, self.test):
            h.update(np.asarray(a, np.int64).tobytes())
            h.update(b"|")
        return h.hexdigest()

    def to_dict(self) -> dict:
        return {"seed": self.seed, "dataset_fingerprint": self.dataset_fingerprint, "test_source": self.test_source,
                "hash": self.hash, "members": self.members.tolist(), "nonmembers": self.nonmembers.tolist(),
                "test": self.test.tolist()}

    def save(self, path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> "Split":
        from mi_defense.io import read_json

        d = read_json(path, "split file")
        try:
            s = cls(np.asarray(d["members"], np.int64), np.asarray(d["nonmembers"], np.int64),
                    np.asarray(d["test"], np.int64), d["test_source"], int(d["seed"]), d["dataset_fingerprint"])
            want = d["hash"]
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{path}: not a split file written by mi-defense ({type(exc).__name__}: {exc}); "
                            "pass a split.json it wrote") from None
        if s.hash != want:
            raise UserError(f"{path}: split hash mismatch; the file was edited, re-create the split")
        return s

    def check(self, dataset) -> None:
        """Raise if this split was not made for ``dataset``."""
        if dataset.fingerprint() != self.dataset_fingerprint:
            raise UserError("the saved split was made for different data (fingerprint mismatch); "
                            "re-create it or load the same dataset")

    def test_data(self, dataset):
        if self.test_source == "test":
            return dataset.x_test[self.test], dataset.y_test[self.test]
        return dataset.x_train[self.test], dataset.y_train[self.test]


def make_split(dataset, n_members: int, n_nonmembers: Optional[int] = None, n_test: Optional[int] = None,
               seed: int = 0) -> Split:
    """Draw disjoint members, non-members and test indices with ``seed``.

    ``n_nonmembers`` defaults to ``n_members``; ``n_test`` defaults to the whole test
    set, or to 20% of the pool when the dataset has none.
    """
    n_nonmembers = n_members if n_nonmembers is None else n_nonmembers
    rng = np.random.default_rng(seed)
    n_pool = len(dataset.x_train)
    has_test = dataset.x_test is not None
    if n_test is None:
        n_test = len(dataset.x_test) if has_test else max(1, n_pool // 5)
    need = n_members + n_nonmembers + (0 if has_test else n_test)
    if min(n_members, n_nonmembers, n_test) < 1:
        raise UserError("members, non-members and test must each hold at least one example")
    if need > n_pool:
        raise UserError(f"{dataset.name}: the split needs {need} training-pool examples "
                        f"(members {n_members} + non-members {n_nonmembers}"
                        f"{'' if has_test else f' + test {n_test}'}) but the pool has {n_pool}; ask for fewer members")
    perm = rng.permutation(n_pool)
    members = np.sort(perm[:n_members])
    nonmembers = np.sort(perm[n_members:n_members + n_nonmembers])
    if has_test:
        if n_test > len(dataset.x_test):
            raise UserError(f"{dataset.name}: asked for {n_test} test examples, the test set has {len(dataset.x_test)}")
        test = np.sort(rng.permutation(len(dataset.x_test))[:n_test])
        source = "test"
    else:
        test = np.sort(perm[n_members + n_nonmembers:n_members + n_nonmembers + n_test])
        source = "train"
    return Split(members.astype(np.int64), nonmembers.astype(np.int64), test.astype(np.int64), source, seed,
                 dataset.fingerprint())


def universe_masks(n_examples: int, n_runs: int, seed: int = 0) -> np.ndarray:
    """Inclusion mask ``(n_examples, n_runs)`` for reference runs over a universe.

    Runs come in complementary pairs: run ``2k`` trains on a random half of the universe
    and run ``2k + 1`` on the other half. Every run trains on half of the universe and
    every example is in exactly half of the runs, as in LiRA ("Membership Inference
    Attacks From First Principles"). The pairs make leave-one-out honest: holding out
    run ``j`` *and its partner* leaves every example in exactly ``n_runs / 2 - 1`` of the
    remaining runs, so they carry no trace of the held-out run's membership (holding out
    one run alone would: its members would be IN one run fewer among the rest).
    """
    if n_runs < 2 or n_runs % 2:
        raise UserError(f"the number of reference runs must be even and at least 2, got {n_runs}")
    rng = np.random.default_rng(seed)
    half = n_examples // 2
    mask = np.zeros((n_examples, n_runs), bool)
    for k in range(n_runs // 2):
        perm = rng.permutation(n_examples)
        first = np.zeros(n_examples, bool)
        first[perm[:half + (rng.random() < 0.5 if n_examples % 2 else 0)]] = True
        mask[:, 2 * k] = first
        mask[:, 2 * k + 1] = ~first
    return mask


def partner(run: int) -> int:
    """The run trained on the complement of ``run``'s half (see ``universe_masks``)."""
    return run ^ 1
