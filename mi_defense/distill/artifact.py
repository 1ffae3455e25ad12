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
``init_member_indices``     int64: training-pool indices of the members copied into the
                            set at initialisation (empty unless ``init=real``): these
                            members are exposed by the release
``transform_kind``          ``"standardize"`` or ``"zca"``
``transform_scale_uint8``   whether uint8 inputs are divided by 255 first
``transform_mean``,         float32 ``(C,)``: per-channel mean and standard deviation
``transform_std``
``transform_zca``,          float32 ``(HWC, HWC)``: whitening matrix and its inverse
``transform_zca_inv``       (only when ``transform_kind == "zca"``, the RGB default)
==========================  ==========================================================

The forward transform maps pixels ``p`` (uint8) to model space:
``z = (p / 255 - mean) / std``, then for ZCA ``z <- reshape(flatten(z) @ zca)``. Test
images must go through it before a model trained on ``x`` sees them; ``images_uint8`` is
``round(255 * (flatten(x) @ zca_inv * std + mean))``, clipped to [0, 255].
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import numpy as np

from mi_defense.config import check_whole
from mi_defense.data.transforms import Transform
from mi_defense.errors import UserError


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
        provenance: what made the set (settings, seed, timing, versions).
    """

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    transform: Transform
    class_names: List[str]
    exposed_members: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    provenance: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def images(self) -> np.ndarray:
        """The synthetic images in pixels, uint8."""
        return self.transform.inverse(self.x, to_uint8=True)

    def save(self, path) -> Path:
        """Write ``distilled.npz`` (format in this module's docstring) atomically; return its path."""
        from mi_defense.io import write_npz

        path = Path(path)
        write_npz(path, x=self.x, y=self.y, labels=self.labels, images_uint8=self.images,
                  class_names=np.array(self.class_names), init_member_indices=np.asarray(self.exposed_members, np.int64),
                  provenance=np.array(json.dumps(self.provenance, default=str)), **self.transform.to_arrays())
        return path

    @classmethod
    def load(cls, path) -> "DistilledSet":
        return load_distilled(path)

    def to_tf_dataset(self, *, batch_size: int = 256, shuffle: bool = True, seed: int = 0):
        """A ``tf.data.Dataset`` of ``(x, y)`` batches in model space (the transform already
        applied), for ``model.fit`` with a mean-squared-error loss."""
        from mi_defense.tfenv import tf

        check_whole(batch_size, "batch_size")
        ds = tf.data.Dataset.from_tensor_slices((self.x.astype(np.float32), self.y.astype(np.float32)))
        if shuffle:
            ds = ds.shuffle(len(self.x), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size)

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
    from mi_defense.io import NPZ_READ_ERRORS

    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file; run 'mi-defense distill ... --out DIR' first and pass DIR/distilled.npz")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except NPZ_READ_ERRORS as exc:
        raise UserError(f"{p}: not a readable distilled set ({type(exc).__name__}: {exc}); distil again with "
                        "'mi-defense distill --out DIR'") from None
    missing = [k for k in ("x", "y", "labels", "class_names", "transform_kind") if k not in arrays]
    if missing:
        raise UserError(f"{p}: not a distilled set (missing {', '.join(missing)})")
    provenance = json.loads(str(arrays["provenance"])) if "provenance" in arrays else {}
    exposed = arrays.get("init_member_indices", np.zeros(0, np.int64))
    return DistilledSet(arrays["x"], arrays["y"], arrays["labels"], Transform.from_arrays(arrays),
                        [str(c) for c in arrays["class_names"]], np.asarray(exposed, np.int64), provenance)


def check_compatible(ds: DistilledSet, input_shape, num_classes: int, where: str, dataset_name: str) -> None:
    if tuple(input_shape) != tuple(ds.x.shape[1:]) or num_classes != ds.y.shape[1]:
        raise UserError(f"{where} holds {ds.x.shape[1:]} images with {ds.y.shape[1]} classes, {dataset_name} has "
                        f"{tuple(input_shape)} and {num_classes}; pass the dataset it was distilled from")
