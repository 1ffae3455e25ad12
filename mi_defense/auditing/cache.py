"""The audit's run cache: one ``OUT/cache/<defense key>/<run>.npz`` per trained run.

Each file holds the run's logits on the universe, the positions it trained on, what it
released, and its metadata as a JSON string. Files are written atomically (temporary
name, then rename), so a killed audit leaves no half-written run; a corrupt or truncated
file reads as missing and is retrained. A cached run is used only while its recorded
settings match the defense as now resolved and it trained on the examples the audit's plan
gives it (``stale``: the committed runs of a reference audit are reused on other machines),
and its numbers are finite (``check_finite``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from mi_defense.errors import UserError
from mi_defense.io import NPZ_READ_ERRORS, write_npz


class RunCache:
    def __init__(self, out_dir):
        self.root = Path(out_dir) / "cache"

    def path(self, spec, run) -> Path:
        return self.root / spec.key / f"{run}.npz"

    def has(self, spec, run) -> bool:
        return self.path(spec, run).is_file()

    def write(self, spec, run, meta: dict, **arrays: np.ndarray) -> None:
        write_npz(self.path(spec, run), meta=np.array(json.dumps(meta, default=float)), **arrays)

    def read(self, spec, run) -> Optional[dict]:
        """A cached run's arrays and metadata (``"meta"``); None when corrupt or truncated."""
        try:
            with np.load(self.path(spec, run), allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
            d["meta"] = json.loads(str(d["meta"]))
            return d
        except NPZ_READ_ERRORS:
            return None

    def stale(self, spec, run, want: Dict[str, object], positions: np.ndarray,
              cached: Optional[dict] = None) -> Optional[str]:
        """Why the cached run no longer fits ``want`` (the defense's resolved settings) or
        ``positions`` (the universe positions the audit's plan trains it on), or None.

        A spec such as ``subset`` takes its size from the context (the distilled set's
        size), so the same folder can hold runs of another size after the defense list
        changed; another split, seed or dataset file gives other positions."""
        if cached is None:
            cached = self.read(spec, run)
            if cached is None:
                return f"cached {spec} {run} is corrupt or truncated"
        meta = cached["meta"]
        diff = [f"{k}={meta.get(k)} (now {v})" for k, v in want.items() if meta.get(k) != v]
        if diff:
            return f"cached {spec} {run} was trained with {', '.join(diff)}"
        if not np.array_equal(cached.get("train_positions"), positions):
            return f"cached {spec} {run} was trained on other examples than this audit's split and halves give it"
        return None

    def load(self, spec, run, want: Dict[str, object], positions: np.ndarray) -> dict:
        """A cached run that must be there and fit ``want``; otherwise a one-line error with the fix."""
        path = self.path(spec, run)
        if not path.is_file():
            raise UserError(f"run {run} of defense {spec} is missing from {path.parent}; "
                            "run the audit without --shard to train it")
        d = self.read(spec, run)
        if d is None:
            raise UserError(f"{path} is corrupt or truncated; run the audit again without --shard to retrain that run")
        why = self.stale(spec, run, want, positions, d)
        if why:
            raise UserError(f"{why}; run the audit without --shard to train it again")
        check_finite(path, d)
        return d


def check_finite(path: Path, arrays: Dict[str, object]) -> None:
    """Refuse a cached run whose numbers (logits, released set, distances) are not all
    finite: no attack scores a NaN, and nothing is drawn from one."""
    for key, a in arrays.items():
        if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise UserError(f"{path}: its {key} hold {bad} NaN or infinite value(s) (a damaged file, or a run "
                            "that diverged); delete it and run the audit again to retrain that run (one that "
                            "diverges again needs other training settings)")
