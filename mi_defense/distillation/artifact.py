"""The release artifact: a distilled set, its file format and its uses.

``distilled.npz`` is a plain NumPy archive (no pickles) readable without this package:

==========================  ==========================================================
key                         content
==========================  ==========================================================
``x``                       float32 ``(n, H, W, C)``: the synthetic images in model space
                            (what a model is trained on)
``y``                       float32 ``(n, K)``: the learned labels, regression targets of
                            the mean-squared-error loss (FRePo's evaluation protocol)
``labels``                  int64 ``(n,)``: the class each image was made for
``images_uint8``            uint8 ``(n, H, W, C)``: the same images in pixels
``class_names``             str ``(K,)``
``transform_kind``          ``"standardize"`` or ``"zca"``
``transform_scale_uint8``   whether uint8 inputs are divided by 255 first
``transform_mean``,         float32 ``(C,)``: per-channel mean and standard deviation
``transform_std``
``transform_zca``,          float32 ``(HWC, HWC)``: whitening matrix and its inverse
``transform_zca_inv``       (only when ``transform_kind == "zca"``, the RGB default)
``provenance``              JSON: the public provenance (``PUBLIC_PROVENANCE``)
==========================  ==========================================================

The file holds only what a release may show (``PUBLIC_ARRAYS``, ``PUBLIC_PROVENANCE``):
the synthetic set, its classes, the normalisation, the settings that do not depend on
the data, and the privacy statement. Seeds, the split, hashes of the private data, the
number of members (unless a DP statement declares it public), timings, loss histories
and the indices of members copied at initialisation stay in the private run record
(``distill.record``), which is never written into the release.

The forward transform maps pixels ``p`` (uint8) to model space:
``z = (p / 255 - mean) / std``, then for ZCA ``z <- reshape(flatten(z) @ zca)``. Test
images must go through it before a model trained on ``x`` sees them; ``images_uint8`` is
``round(255 * (flatten(x) @ zca_inv * std + mean))``, clipped to [0, 255].
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

from mi_defense.config import DistillConfig, Whole, field_names
from mi_defense.data.transforms import Transform
from mi_defense.errors import UserError

FORMAT = "mi-defense distilled set 2"
# The arrays of a release, besides the transform's (``Transform.to_arrays``).
PUBLIC_ARRAYS = ("x", "y", "labels", "images_uint8", "class_names", "provenance")
# The keys of a release's provenance: nothing computed from the private data but the
# synthetic set itself, and nothing that could regenerate the noise or the split.
PUBLIC_PROVENANCE = ("format", "kind", "dataset", "software", "settings", "privacy", "privacy_statement",
                     "exposed_members")
# Settings that are private (``seed``: the start, the pool and, without DP, the batches)
# or say nothing about the algorithm (how the run was executed).
PRIVATE_SETTINGS = ("seed", "checkpoint_every", "jit", "strategy")
PUBLIC_SETTINGS = tuple(k for k in field_names(DistillConfig) if k not in PRIVATE_SETTINGS)


def public_settings(cfg: DistillConfig) -> dict:
    """The settings a release may show: every ``DistillConfig`` field but ``PRIVATE_SETTINGS``,
    with a public start set named by its file name only (a path can name a person or a site)."""
    from dataclasses import asdict

    d = {k: v for k, v in asdict(cfg).items() if k in PUBLIC_SETTINGS}
    if str(d.get("init", "")).endswith(".npz"):
        d["init"] = Path(d["init"]).name
    return d


def public_provenance(cfg: DistillConfig, privacy: Optional[dict], statement: str, n_exposed: int,
                      dataset: Optional[str] = None) -> dict:
    """The provenance a release carries (keys ``PUBLIC_PROVENANCE``). ``privacy`` is the DP
    plan's public record (None without DP); ``dataset`` a public dataset's name (None for
    the user's own data, whose name or path may identify it)."""
    from mi_defense.version import __version__

    out = {"format": FORMAT, "kind": "frepo-distill", "software": {"mi_defense": __version__},
           "settings": public_settings(cfg), "privacy": privacy, "privacy_statement": statement,
           "exposed_members": int(n_exposed)}
    if dataset is not None:
        out["dataset"] = dataset
    return out


def private_fields(provenance: dict) -> List[str]:
    """Keys of ``provenance`` that a release must not carry (written by versions before
    the public/private split, or added by hand)."""
    bad = [k for k in provenance if k not in PUBLIC_PROVENANCE]
    bad += [f"settings.{k}" for k in (provenance.get("settings") or {}) if k not in PUBLIC_SETTINGS]
    return bad


@dataclass
class DistilledSet:
    """A synthetic training set made by FRePo, ready to release or to train on.

    Attributes:
        x: synthetic images in model space, float32 ``(n, H, W, C)``.
        y: learned labels, float32 ``(n, K)``.
        labels: class of each synthetic image, int64 ``(n,)``.
        transform: the preprocessing that maps pixels to model space (and back).
        class_names: one name per class.
        exposed_members: indices (into the private set given to ``distill``) of the members
            copied into the set at initialisation; empty for a data-independent start.
            Private: kept in memory and in the run record, never written by ``save``.
        provenance: what the release says about itself (``PUBLIC_PROVENANCE``): the
            data-independent settings and the privacy statement.
        private: the private run record (seed, fingerprint of the private data, number of
            members, timings, loss history, versions); written only by
            ``save_private_record``, never by ``save``.
    """

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    transform: Transform
    class_names: List[str]
    exposed_members: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    provenance: dict = field(default_factory=dict)
    private: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def images(self) -> np.ndarray:
        """The synthetic images in pixels, uint8."""
        return self.transform.inverse(self.x, to_uint8=True)

    def save(self, path) -> Path:
        """Write the release, ``distilled.npz`` (format in this module's docstring), atomically;
        return its path. Only the public fields are written (``PUBLIC_PROVENANCE``): a set
        loaded from an older file that carried private fields is written without them."""
        from mi_defense.io import write_npz

        path = Path(path)
        old = self.provenance
        if "settings" not in old and isinstance(old.get("config"), dict):  # an older file's name for them
            old = {**old, "settings": old["config"]}
        public = {"format": FORMAT, **{k: v for k, v in old.items() if k in PUBLIC_PROVENANCE}}
        if isinstance(public.get("settings"), dict):
            public["settings"] = {k: v for k, v in public["settings"].items() if k in PUBLIC_SETTINGS}
        write_npz(path, x=self.x, y=self.y, labels=self.labels, images_uint8=self.images,
                  class_names=np.array(self.class_names), provenance=np.array(json.dumps(public, default=str)),
                  **self.transform.to_arrays())
        return path

    def save_private_record(self, folder) -> Path:
        """Write the private run record (``private`` and ``exposed_members``) as
        ``folder/run.json`` with a one-line README saying it must not be released; return
        the file. Keep ``folder`` apart from what you publish."""
        from mi_defense.distillation.record import README
        from mi_defense.io import write_json, write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_text(folder / "README.txt",
                   README.replace("../distilled.npz (and ../distilled.png)", "the distilled.npz you saved"))
        write_json(folder / "run.json",
                   {**self.private, "init_member_indices": np.asarray(self.exposed_members, np.int64).tolist()})
        return folder / "run.json"

    @classmethod
    def load(cls, path) -> "DistilledSet":
        return load_distilled(path)

    def to_tf_dataset(self, *, batch_size: int = 256, shuffle: bool = True, seed: int = 0):
        """A ``tf.data.Dataset`` of ``(x, y)`` batches in model space (the transform already
        applied), for ``model.fit`` with a mean-squared-error loss."""
        from mi_defense.tfenv import tf

        Whole(1).check(batch_size, "batch_size")
        ds = tf.data.Dataset.from_tensor_slices((self.x.astype(np.float32), self.y.astype(np.float32)))
        if shuffle:
            ds = ds.shuffle(len(self.x), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size)

    def fit(self, model, *, steps: Optional[int] = None, seed: int = 0, progress: bool = False):
        """Train ``model`` (a ``tf.keras.Model`` of yours, output ``num_classes`` wide, no
        softmax) on this set with the protocol the set was made for and ``evaluate`` uses
        (FRePo's: mean-squared error on the learned labels, Adam with warm-up and cosine
        decay, one random augmentation per batch, steps by the set's size); return it. Test
        inputs go through ``self.transform`` first."""
        from mi_defense.config import TrainConfig
        from mi_defense.training.loop import train_model

        cfg = TrainConfig(seed=seed) if steps is None else TrainConfig(seed=seed, steps=steps)
        return train_model(self.x.astype(np.float32), self.y.astype(np.float32), self.y.shape[1], cfg,
                           progress=progress, desc="fit on the release", model=model)

    def export_images(self, folder) -> List[Path]:
        """One PNG per synthetic image, ``<index>_<class>.png``, in ``folder``; return the paths."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from mi_defense.io import atomic_path, check_writable_dir

        check_writable_dir(folder)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, (img, c) in enumerate(zip(self.images, self.labels)):
            name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(self.class_names[int(c)]))
            p = folder / f"{i:04d}_{name}.png"
            with atomic_path(p) as tmp:
                if img.shape[-1] == 1:
                    plt.imsave(tmp, img[..., 0], cmap="gray", vmin=0, vmax=255, format="png")
                else:
                    plt.imsave(tmp, img, format="png")
            paths.append(p)
        return paths


def load_distilled(path) -> DistilledSet:
    """Read a ``distilled.npz`` written by ``mi-defense distill`` or ``DistilledSet.save``."""
    from mi_defense.distillation.validate import check_arrays, check_sizes
    from mi_defense.io import NPZ_READ_ERRORS

    if not isinstance(path, (str, Path)):
        raise UserError(f"load_distilled needs the path of a distilled.npz, got {type(path).__name__}")
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file; run 'mi-defense distill ... --out DIR' first and pass DIR/distilled.npz")
    check_sizes(p)  # before reading: a header may declare far more than the file holds
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except NPZ_READ_ERRORS as exc:
        raise UserError(f"{p}: not a readable distilled set ({type(exc).__name__}: {exc}); distil again with "
                        "'mi-defense distill --out DIR'") from None
    provenance = check_arrays(p, arrays)
    private = private_fields(provenance) + (["init_member_indices"] if "init_member_indices" in arrays else [])
    if private:
        import warnings

        warnings.warn(f"{p} carries private fields ({', '.join(private[:6])}{', ...' if len(private) > 6 else ''}), "
                      "written by an older version: do not publish it as it is; "
                      "mi_defense.load_distilled(path).save(new_path) writes it without them",
                      UserWarning, stacklevel=2)
    exposed = arrays.get("init_member_indices", np.zeros(0, np.int64))
    return DistilledSet(arrays["x"], arrays["y"], arrays["labels"], Transform.from_arrays(arrays),
                        [str(c) for c in arrays["class_names"]], np.asarray(exposed, np.int64), provenance)


def check_compatible(ds: DistilledSet, input_shape, num_classes: int, where: str, dataset_name: str) -> None:
    if tuple(input_shape) != tuple(ds.x.shape[1:]) or num_classes != ds.y.shape[1]:
        raise UserError(f"{where} holds {ds.x.shape[1:]} images with {ds.y.shape[1]} classes, {dataset_name} has "
                        f"{tuple(input_shape)} and {num_classes}; pass the dataset it was distilled from")
