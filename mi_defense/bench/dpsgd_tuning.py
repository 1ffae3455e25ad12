"""Tune the DP-SGD recipes on data disjoint from the reported members, then run the pick on them.

Choosing hyper-parameters on the private members spends privacy that no accountant counts
("Hyperparameter Tuning with Renyi Differential Privacy", Papernot & Steinke 2022). The
grid here runs on training-pool images *outside* the reference audit's universe (its
members and non-members, rebuilt exactly as ``Audit._split`` does for
``reports/cpu-reference.toml`` and checked against the committed ``split.json``):

* a **tuning set** of ``--tune`` images (the defense's members in the grid) and a
  **validation set** of ``--val`` images, both drawn with ``--seed`` from the pool minus
  the universe (the test set is never touched);
* every setting of ``GRID`` (model, epsilon, batch, epochs, learning rate, clipping norm)
  is fitted on the tuning set and scored on the validation set; the best per (model,
  epsilon) by validation accuracy is the pick;
* the pick is then fitted once on the audit's members (seed of the audit's target run)
  and evaluated on the audit's test images and on the whole test set.

Everything goes to ``OUT/tuning.json`` (rewritten after each setting, so a killed run
resumes) and ``OUT/final.json``::

    MI_DEFENSE_DATA=/work/shared/data python -m mi_defense.bench.dpsgd_tuning --dataset mnist \\
        --out reports/dpsgd-recipes/mnist
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

# (defense, epsilon, overrides): a handful per model and epsilon, around the literature's settings
GRID = [
    *[("dpsgd-linear", e, dict(batch=b, epochs=ep, lr=lr, clip=0.1))
      for e in (1.0, 8.0) for b, ep, lr in ((1000, 30, 4.0), (1000, 60, 4.0), (500, 30, 4.0), (1000, 30, 1.0),
                                             (1000, 100, 8.0))],
    *[("dpsgd", e, dict(batch=b, epochs=ep, lr=lr, clip=1.0))
      for e in (1.0, 8.0) for b, ep, lr in ((500, 20, 2.0), (500, 20, 0.5), (250, 15, 1.0))],
    # added after the first MNIST pass: at epsilon 1 the ConvNet wanted smaller steps than lr 0.5
    *[("dpsgd", 1.0, dict(batch=b, epochs=ep, lr=lr, clip=1.0)) for b, ep, lr in ((500, 20, 0.1), (250, 15, 0.1))],
]


def _key(defense, epsilon, over) -> str:
    return f"{defense}:eps={epsilon:g}," + ",".join(f"{k}={v:g}" for k, v in sorted(over.items()))


def _toml(text: str) -> dict:
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python < 3.11
        import tomli as tomllib
    return tomllib.loads(text)


def reference_split(ds, toml_path: Path, split_json: Path):
    """The reference audit's split, made as ``Audit._split`` makes it, checked against its split.json."""
    from mi_defense.data import Split, make_split

    audit = _toml(toml_path.read_text())["audit"]
    split = make_split(ds, audit["members"], audit["nonmembers"], audit.get("test"), seed=audit.get("seed", 0))
    saved = Split.load(split_json)
    if saved.hash != split.hash:
        raise SystemExit(f"rebuilt split {split.hash} differs from {split_json} ({saved.hash})")
    return split, audit


def tuning_images(ds, split, seed: int = 20240, tune: int = 1000, val: int = 2000):
    """The tuning and validation images' training-pool positions: ``tune + val`` drawn with
    ``default_rng(seed)`` from the pool outside the reference audit's universe (``split``'s
    members and non-members), the first ``tune`` (sorted) for tuning, the rest for validation."""
    universe = np.r_[split.members, split.nonmembers]
    outside = np.setdiff1d(np.arange(len(ds.x_train)), universe)
    pick = np.random.default_rng(seed).choice(outside, tune + val, replace=False)
    return np.sort(pick[:tune]), np.sort(pick[tune:])


def fit_and_score(spec: str, ctx, x, y, seed, evals):
    from mi_defense.config import DefenseSpec
    from mi_defense.defenses import make_defense
    from mi_defense.training.evaluate import accuracy

    t0 = time.time()
    res = make_defense(DefenseSpec.parse(spec), ctx).fit(x, y, seed)
    m = res.metadata
    out = {"spec": spec, "seconds": round(time.time() - t0, 1), "epsilon": m["epsilon"], "delta": m["delta"],
           "noise_multiplier": m["noise_multiplier"], "steps": m["train_steps"], "batch_cap": m["batch_cap"],
           "truncation_probability": m["truncation_probability"], "train_accuracy": m["train_accuracy"],
           "recipe": m["recipe"]}
    for name, (xe, ye) in evals.items():
        out[name] = accuracy(res.model, xe, ye)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20240)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--val", type=int, default=2000)
    ap.add_argument("--only", default="", help="run only grid keys containing this text")
    ap.add_argument("--final", action="store_true", help="also fit the picks on the audit members")
    ap.add_argument("--defaults", default="", help="comma-separated specs (e.g. dpsgd:eps=8) to fit on the audit "
                                                     "members with the package's default recipe, recorded under "
                                                     "'defaults'")
    ap.add_argument("--transform", choices=("fitted", "fixed"), default="fitted",
                    help="normalisation of the final fits: fitted to the training pool (as tuned), or fixed (as the "
                         "audit uses when a defense claims DP); fixed writes final-fixed.json")
    args = ap.parse_args(argv)

    from mi_defense.config import TrainConfig
    from mi_defense.data import Transform, default_transform_kind, load_dataset
    from mi_defense.defenses import DefenseContext
    from mi_defense.io import write_json

    root = Path(__file__).resolve().parents[2]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(args.dataset)
    split, audit = reference_split(ds, root / "reports/cpu-reference.toml",
                                   root / f"reports/{args.dataset}-cpu/split.json")
    tune_idx, val_idx = tuning_images(ds, split, args.seed, args.tune, args.val)
    outside = len(ds.x_train) - len(split.members) - len(split.nonmembers)
    transform = Transform.fit(ds.x_train, default_transform_kind(ds.input_shape))  # as the audit does
    xt, yt = transform(ds.x_train[tune_idx]), ds.y_train[tune_idx]
    xv, yv = transform(ds.x_train[val_idx]), ds.y_train[val_idx]
    train = _toml((root / "reports/cpu-reference.toml").read_text())["train"]
    ctx = DefenseContext(ds.num_classes, ds.input_shape, TrainConfig(width=train["width"], depth=train["depth"]))

    path = out / "tuning.json"
    state = json.loads(path.read_text()) if path.is_file() else {}
    state.update({"dataset": args.dataset, "seed": args.seed, "split_hash": split.hash,
                  "protocol": f"{args.tune} tuning and {args.val} validation images drawn with numpy "
                              f"default_rng({args.seed}) from the {outside} training-pool images outside the "
                              f"reference audit's universe ({len(split.members)} members + {len(split.nonmembers)} "
                              f"non-members, split {split.hash[:12]}); transform fitted on the training pool as the "
                              f"audit does; architecture width {train['width']} depth {train['depth']}; fit seed "
                              f"{args.seed}",
                  "tune_indices_sha256": __import__("hashlib").sha256(tune_idx.tobytes()).hexdigest(),
                  "val_indices_sha256": __import__("hashlib").sha256(val_idx.tobytes()).hexdigest()})
    runs = state.setdefault("runs", {})
    for defense, epsilon, over in GRID:
        key = _key(defense, epsilon, over)
        if key in runs or args.only not in key:
            continue
        r = fit_and_score(key, ctx, xt, yt, args.seed, {"val_accuracy": (xv, yv)})
        r.update(defense=defense, target_epsilon=epsilon, overrides=over)
        runs[key] = r
        print(f"{key}: val {r['val_accuracy']:.4f} train {r['train_accuracy']:.4f} sigma {r['noise_multiplier']:.3g} "
              f"steps {r['steps']} {r['seconds']:.0f}s", flush=True)
        write_json(path, state)
    best = {}
    for key, r in runs.items():
        g = f"{r['defense']}:eps={r['target_epsilon']:g}"
        if g not in best or r["val_accuracy"] > runs[best[g]]["val_accuracy"]:
            best[g] = key
    state["picks"] = best
    write_json(path, state)
    print("picks:", json.dumps({g: (k, round(runs[k]["val_accuracy"], 4)) for g, k in best.items()}, indent=1))
    if not (args.final or args.defaults):
        return
    fpath = out / ("final.json" if args.transform == "fitted" else "final-fixed.json")
    if args.transform == "fixed":
        transform = Transform.fixed(ds.input_shape[-1], ds.x_train.dtype == np.uint8)
    final = json.loads(fpath.read_text()) if fpath.is_file() else {}
    final.update({"split_hash": split.hash, "members": len(split.members),
                  "note": "each pick fitted once on the reference audit's members with the seed of its target run "
                          f"({audit.get('seed', 0)}); test_accuracy_audit on the audit's {len(split.test)} test "
                          f"images, test_accuracy_full on all {len(ds.x_test)}; inputs normalised by the "
                          f"{args.transform} transform"})
    xm, ym = transform(ds.x_train[split.members]), ds.y_train[split.members]
    evals = {"test_accuracy_audit": (transform(ds.x_test[split.test]), ds.y_test[split.test]),
             "test_accuracy_full": (transform(ds.x_test), ds.y_test)}
    res = final.setdefault("runs", {})
    todo = list(best.items()) if args.final else []
    for spec in filter(None, args.defaults.split(",")):
        todo.append(("defaults/" + spec, spec))
    for g, key in todo:
        if g in res and res[g]["spec"] == key:
            continue
        r = fit_and_score(key, ctx, xm, ym, int(audit.get("seed", 0)), evals)
        r["val_accuracy_in_tuning"] = runs[key]["val_accuracy"] if key in runs else None
        res[g] = r
        print(f"final {key}: test {r['test_accuracy_audit']:.4f} (audit 2000) {r['test_accuracy_full']:.4f} (full) "
              f"{r['seconds']:.0f}s", flush=True)
        write_json(fpath, final)


if __name__ == "__main__":
    os.environ.setdefault("MI_DEFENSE_DATA", "/work/shared/data")
    main()
