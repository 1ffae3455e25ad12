"""What an audit leaves beside ``results.json``: per-example scores, the most exposed
members, and each released set with the member images its initialisation copied.

* ``cache/<defense>/scores.npz``: every attack's score for every universe example.
* ``artifacts/<defense>/vulnerable.npz``: the members the declared attack (the release
  attack for a released set, else the primary attack) ranks highest, with their images.
* ``artifacts/<defense>/released.npz``: the released synthetic set, in model space and as
  uint8 pixels, with the transform that maps between them.

These functions build the files' arrays from the audit's set-up (``audit.setup``) and
write nothing: each returns ``{path relative to the audit folder: arrays}``, which the
orchestrator (``audit.core``) writes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

Files = Dict[str, Dict[str, np.ndarray]]  # path relative to the audit folder -> the arrays of its .npz


def scores(setup, spec, results: dict, top: int = 8) -> Tuple[Dict[str, np.ndarray], Files]:
    """Per-example scores (taken out of ``results``) and their file; the members the declared
    attack (release attack for a released set, else the primary attack) ranks highest, as
    the artifacts' ``vulnerable.npz``."""
    cfg = setup.cfg
    out = {name: np.asarray(r.pop("scores"), np.float64) for name, r in results.items() if "scores" in r}
    files = {str(Path("cache", spec.key, "scores.npz")):
             dict(universe=setup.universe, membership=setup.membership, **out)}
    name = next((a for a in (cfg.release_attack if setup.defenses[spec.key].releases else None, cfg.primary)
                 if a in out), None)
    if name is None:
        return out, files
    s = out[name][: setup.n_members]
    order = np.argsort(-s, kind="mergesort")[:top]
    files[str(Path("artifacts", spec.key, "vulnerable.npz"))] = dict(
        attack=np.array(name), dataset_indices=setup.universe[order], scores=s[order], labels=setup.y_u[order],
        images=raw_images(setup.ds, setup.universe[order]))
    return out, files


def raw_images(ds, idx: np.ndarray) -> np.ndarray:
    """The dataset's own images at ``idx`` (none for tabular data)."""
    x = ds.x_train[idx]
    return x if x.ndim == 4 else np.zeros((len(idx), 0), np.uint8)


def release(setup, spec, tgt) -> Tuple[Optional[dict], Files]:
    """The released set's summary for ``results.json`` (None when the defense releases nothing) and its file."""
    if "released_x" not in tgt:
        return None, {}
    path = str(Path("artifacts", spec.key, "released.npz"))
    x = tgt["released_x"]
    pixels = setup.transform.inverse(x, to_uint8=True)
    init = tgt["released_init_universe_positions"]
    arrays = dict(x=x, y=tgt["released_y"], labels=tgt["released_labels"], images_uint8=pixels,
                  init_universe_positions=init, init_member_images=raw_images(setup.ds, setup.universe[init]),
                  **setup.transform.to_arrays())
    summary = {"kind": "synthetic set", "path": path, "n_images": int(len(x)),
               "init_member_indices": setup.universe[init].tolist() if len(init) else []}
    return summary, {path: arrays}
