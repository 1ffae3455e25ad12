"""What an audit leaves beside ``results.json``: per-example scores, the most exposed
members, and each released set with the member images its initialisation copied.

* ``cache/<defense>/scores.npz``: every attack's score for every universe example.
* ``artifacts/<defense>/vulnerable.npz``: the members the declared attack (the release
  attack for a released set, else the primary attack) ranks highest, with their images.
* ``artifacts/<defense>/released.npz``: the released synthetic set, in model space and as
  uint8 pixels, with the transform that maps between them.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from mi_defense.io import write_npz


def save_scores(audit, spec, results: dict, top: int = 8) -> Dict[str, np.ndarray]:
    """Per-example scores to the cache (and returned); the members the declared attack
    (release attack for a released set, else the primary attack) ranks highest, to the artifacts."""
    scores = {name: np.asarray(r.pop("scores"), np.float64) for name, r in results.items() if "scores" in r}
    write_npz(audit.out / "cache" / spec.key / "scores.npz", universe=audit.universe, membership=audit.membership, **scores)
    name = next((a for a in (audit.cfg.release_attack if audit.defenses[spec.key].releases else None, audit.cfg.primary)
                 if a in scores), None)
    if name is None:
        return scores
    s = scores[name][: audit.n_members]
    order = np.argsort(-s, kind="mergesort")[:top]
    write_npz(audit.out / "artifacts" / spec.key / "vulnerable.npz", attack=np.array(name),
              dataset_indices=audit.universe[order], scores=s[order], labels=audit.y_u[order],
              images=raw_images(audit, audit.universe[order]))
    return scores


def raw_images(audit, idx: np.ndarray) -> np.ndarray:
    """The dataset's own images at ``idx`` (none for tabular data)."""
    x = audit.ds.x_train[idx]
    return x if x.ndim == 4 else np.zeros((len(idx), 0), np.uint8)


def summarise_release(audit, spec, tgt) -> Optional[dict]:
    """The released set's file and summary for ``results.json`` (None when the defense releases nothing)."""
    if "released_x" not in tgt:
        return None
    art = audit.out / "artifacts" / spec.key
    x = tgt["released_x"]
    pixels = audit.transform.inverse(x, to_uint8=True)
    init = tgt["released_init_universe_positions"]
    write_npz(art / "released.npz", x=x, y=tgt["released_y"], labels=tgt["released_labels"], images_uint8=pixels,
              init_universe_positions=init, init_member_images=raw_images(audit, audit.universe[init]),
              **audit.transform.to_arrays())
    return {"kind": "synthetic set", "path": str((art / "released.npz").relative_to(audit.out)), "n_images": int(len(x)),
            "init_member_indices": audit.universe[init].tolist() if len(init) else []}
