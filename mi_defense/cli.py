"""The ``mi-defense`` command line: one parser and one command function per command, each
command a call of the public API (``mi_defense.api``) and the lines it prints."""
from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import List, Optional

from mi_defense import api, cli_args
from mi_defense.config import AUGMENT_MODES
from mi_defense.errors import UserError, exposure_warnings_on_one_line
from mi_defense.version import __version__

DESCRIPTION = """\
Distil a private training set with FRePo ("Dataset Distillation using Neural Feature
Regression"), train models on the synthetic data and on baseline defenses (no defense,
a random real subset, DP-SGD), and audit every defense with membership-inference attacks
(threshold, trained attackers, LiRA, RMIA, attacks on the released synthetic data)."""

_say = functools.partial(print, flush=True)  # one line at once, for logs read while a command runs


# --------------------------------------------------------------------------- data
def cmd_data_list(args) -> int:
    print(f"{'name':<15}{'shape':<14}{'classes':>8}{'train':>8}{'test':>7}  available")
    for d in api.list_datasets(data_dir=args.data_dir):
        shape = "x".join(str(n) for n in d["input_shape"])
        print(f"{d['name']:<15}{shape:<14}{d['num_classes']:>8}{d['n_train']:>8}{d['n_test']:>7}  {d['available']}")
    print("\nUser data: --dataset path/to/data.npz (x_train, y_train[, x_test, y_test]) or --dataset path/to/folder "
          "(one subfolder per class).")
    return 0


def cmd_data_fetch(args) -> int:
    ds = api.fetch_dataset(args.name, data_dir=args.data_dir)
    test = f", test {len(ds.x_test)}" if ds.x_test is not None else ""
    print(f"{ds.name}: train {len(ds.x_train)}{test}, shape {ds.input_shape}, {ds.num_classes} classes; "
          "checksums verified")
    for f, h in ds.files.items():
        print(f"  {f}  sha256 {h}")
    return 0


def cmd_attacks(_args) -> int:
    from attacks.registry import DESCRIPTIONS, get

    needs = {"outputs": "target outputs", "reference": "reference runs", "release": "a released set"}
    for n, text in DESCRIPTIONS.items():
        print(f"{n:<28}{needs[get(n).needs]:<16}{text}")
    return 0


# --------------------------------------------------------------------------- distill / evaluate
def _distill_settings(args) -> dict:
    """The ``DistillConfig`` fields the flags set (None: not given)."""
    return dict(ipc=args.ipc, steps=args.steps, width=args.width, depth=args.depth, batch_real=args.batch_real,
                pool_size=args.pool_size, max_online_updates=args.max_online_updates, init=args.init,
                learn_labels=False if args.no_learn_labels else None, flip=args.flip, seed=args.seed,
                checkpoint_every=args.checkpoint_every, jit=True if args.jit else None, strategy=args.strategy,
                pool_norm=args.pool_norm, lr=args.lr, label_lr=args.label_lr, epsilon=args.epsilon, delta=args.delta,
                clip=args.clip, clip_space=args.clip_space, mechanism=args.mechanism, networks=args.networks)


def cmd_distill(args) -> int:
    meta = api.distill_dataset(args.dataset, out=args.out, preset=args.preset, config=args.config,
                               data_dir=args.data_dir, members=args.members, split=args.split, resume=args.resume,
                               progress=not args.quiet, tensorboard=args.tensorboard,
                               keep_checkpoint=args.keep_checkpoint, log=print, **_distill_settings(args))
    state = "done" if meta["complete"] else "stopped early"
    print(f"distilled {meta['n_members']} members of {meta['dataset']} into {meta['n_synthetic']} synthetic images "
          f"({state}, {meta['steps_done']} steps, {meta['seconds']:.0f} s, final loss "
          f"{meta['final_loss'] if meta['final_loss'] is None else format(meta['final_loss'], '.4f')}) -> {args.out}")
    if meta["complete"]:
        print(f"release: {args.out}/distilled.npz, {args.out}/distilled.png; private run record (never publish): "
              f"{args.out}/{api.PRIVATE_DIR}/")
    return 0


def cmd_evaluate(args) -> int:
    r = api.evaluate(args.distilled, args.dataset, models=args.models, data_dir=args.data_dir, preset=args.preset,
                     json_path=args.json, baseline_subset=args.baseline_subset, progress=not args.quiet, log=_say,
                     compare_width=args.compare_width, batched=args.batched, only_subset=args.only_subset,
                     width=args.width, depth=args.depth, steps=args.train_steps, seed=args.seed,
                     augment=args.augment, lr_final_ratio=args.lr_final_ratio)
    print("\n".join(evaluation_lines(r)))
    return 0


def evaluation_lines(r: dict) -> List[str]:
    """The lines ``mi-defense evaluate`` prints for a result of ``mi_defense.api.evaluate``."""
    def acc(b):
        return f"test accuracy {100 * b['test_accuracy_mean']:.2f} +- {100 * b['test_accuracy_std']:.2f} %"
    def line(what, b):
        return (f"{what} ({b['n_train']} images): {acc(b)} over {b['models']} models of width "
                f"{b['train_config']['width']}, {b.get('train_steps', '?')} steps each")
    lines = [line("distilled set", r)] if "test_accuracy_mean" in r else []
    lines += [f"  under width-{width} evaluation: {acc(b)}" for width, b in r.get("at_width", {}).items()]
    if "random_subset" in r:
        lines.append(line("random real subset", r["random_subset"]))
    return lines


# --------------------------------------------------------------------------- audit / run / report
def _parse_shard(text):
    """``--shard i/n`` as ``(i, n)``; ``api.audit`` checks the range."""
    if text is None:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UserError(f"--shard '{text}' must look like i/n, e.g. 0/4") from None
    return i, n


def _audit_config(args):
    from mi_defense.config import resolve_audit_config

    keys = ("dataset", "data_dir", "references", "targets", "seed", "members", "nonmembers", "real_steps", "bootstrap",
            "primary_attack", "width", "depth", "model")
    return resolve_audit_config(args.preset, args.config, **{k: getattr(args, k, None) for k in keys},
                                defenses=args.defense or None, attacks=args.attack or None)


def cmd_audit(args) -> int:
    from mi_defense.io import check_writable_dir

    cfg = _audit_config(args)
    out = args.out or f"reports/{Path(cfg.dataset).name.replace('.', '_')}-{args.preset}"
    check_writable_dir(out)
    print(f"mi-defense {args.command}: preset {args.preset} on {cfg.dataset}; defenses {', '.join(cfg.defenses)}; "
          f"{cfg.references} reference runs; "
          + (f"model {cfg.model}" if cfg.model else f"ConvNets of width {cfg.train.width}, depth {cfg.train.depth}")
          + f"; output {out}")
    options = {"together": args.together, **({"address": args.ray_address} if args.executor == "ray" else {})}
    results = api.audit(config=cfg, out=out, shard=_parse_shard(args.shard), progress=not args.quiet, log=print,
                        executor=args.executor, executor_options=options)
    if results is not None:
        print(results.summary())
        api.report(results)
        print(f"-> {out}/results.json, {out}/report.html, {out}/report.md")
    return 0


def cmd_report(args) -> int:
    paths = api.report(args.dir)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``mi-defense`` parser: one subparser per command, in the order ``--help`` lists them."""
    from mi_defense.cli_bench import add_bench_parser
    from mi_defense.cli_canary import add_canary_parser

    p = argparse.ArgumentParser(prog="mi-defense", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"mi-defense {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add in (add_data_parser, add_attacks_parser, add_distill_parser, add_evaluate_parser,
                functools.partial(add_bench_parser, data_dir_arg=cli_args.data_dir_arg), add_audit_parser,
                add_run_parser, add_canary_parser, add_report_parser):
        add(sub)
    return p


def add_data_parser(sub) -> None:
    d = sub.add_parser("data", help="list and fetch datasets")
    dsub = d.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    dl = dsub.add_parser("list", help="each dataset, its shape, classes and where it is available")
    cli_args.data_dir_arg(dl)
    dl.set_defaults(func=cmd_data_list)
    df = dsub.add_parser("fetch", help="find or download a dataset and verify its checksums")
    df.add_argument("name", help="mnist, fashion_mnist, cifar10 or adult")
    cli_args.data_dir_arg(df)
    df.set_defaults(func=cmd_data_fetch)
    d.set_defaults(func=lambda a: (d.print_help(), 2)[1])


def add_attacks_parser(sub) -> None:
    at = sub.add_parser("attacks", help="list the attacks with one line each",
                        description="Every attack of the suite: its name (for --attack and --primary-attack), what it "
                                    "needs, what it scores.")
    at.set_defaults(func=cmd_attacks)


def add_distill_parser(sub) -> None:
    from mi_defense.config import DISTILL_PRESETS, NORMS, DistillConfig

    ds = sub.add_parser("distill", help="distil a private training set with FRePo",
                        description="Distil the members of a dataset with FRePo (Dataset Distillation using Neural "
                                    "Feature Regression).")
    ds.add_argument("--dataset", default="digits", help="dataset name, .npz file or image folder (default: digits)")
    cli_args.data_dir_arg(ds)
    ds.add_argument("--out", required=True, metavar="DIR", help="output folder: the release (distilled.npz, "
                    "distilled.png) and the private run record DIR/PRIVATE-do-not-release/ (split, seeds, timings, "
                    "checkpoint: never publish it)")
    ds.add_argument("--preset", default="auto", choices=["auto", *DISTILL_PRESETS],
                    help="auto (default): small below 20 000 members, else quick, and quick with --epsilon (DP "
                         "settings never depend on the data); small: width 32, 1000 steps; quick: CPU-sized, width 64, "
                         "2000 steps; paper: the paper's setting")
    ds.add_argument("--config", metavar="TOML", help="a TOML file with a [distill] table")
    ds.add_argument("--ipc", type=int, help="synthetic images per class (default 10)")
    ds.add_argument("--steps", type=int, help="outer steps (default 1000 for small, 2000 for quick, 500 for quick with "
                    "--epsilon, 20000 for paper)")
    ds.add_argument("--width", type=int, help="pool ConvNet width (default 32 for small, 64 for quick, 128 for paper)")
    ds.add_argument("--depth", type=int, help="pool ConvNet depth, conv blocks (default 3)")
    ds.add_argument("--pool-norm", choices=NORMS, help="normalisation in the pool models (default batch)")
    ds.add_argument("--batch-real", type=int, help="real examples per outer step (default 256 for quick, 1024 for "
                    "quick with --epsilon and for paper)")
    ds.add_argument("--pool-size", type=int, help="online models in the pool (default 10)")
    ds.add_argument("--max-online-updates", type=int,
                    help="training steps after which a pool model is re-initialised (default 100)")
    ds.add_argument("--init", help="noise (default: white Gaussian noise, copies no member), smooth-noise (the default "
                                   "with --epsilon and quick: Gaussian noise blurred over "
                                   f"{DistillConfig.smooth_sigma:g} pixels; smooth_sigma in --config), real (copies "
                                   "--ipc members per class, which the release then exposes; prints a warning), or a "
                                   "public .npz set")
    ds.add_argument("--lr", type=float, help="LAMB learning rate of the synthetic set (default 1e-2 from noise, 3e-4 "
                                             "from real or public images)")
    ds.add_argument("--label-lr", type=float,
                    help="LAMB learning rate of the learned labels (default: the images' rate)")
    cli_args.add_distill_dp_args(ds)
    cli_args.add_distill_run_args(ds)
    ds.set_defaults(func=cmd_distill)


def add_evaluate_parser(sub) -> None:
    from mi_defense.config import TRAIN_PRESETS

    ev = sub.add_parser("evaluate", help="train fresh models on a distilled set and report test accuracy",
                        description="FRePo's evaluation protocol: fresh ConvNets without normalisation trained on the "
                                    "synthetic set only (Adam 3e-4, 500-step warm-up then cosine decay, MSE on the "
                                    "learned labels, one random augmentation per batch; 1000/2000/5000 steps for "
                                    "10/100/500 images); test accuracy mean and std over the models. The test set is "
                                    "used only for the final number.")
    ev.add_argument("--distilled", required=True, metavar="NPZ", help="a distilled.npz written by mi-defense distill")
    ev.add_argument("--dataset", default="digits",
                    help="the dataset it was distilled from, for its test split (default: digits)")
    cli_args.data_dir_arg(ev)
    ev.add_argument("--models", type=int, help="fresh models per set, for the mean and its spread. Default sized to "
                    "the distillation: a set distilled with the small preset (the default below 20 000 members) gets "
                    "2 models of half the protocol's steps, any other set 3 models of the full protocol (FRePo's "
                    "paper reports 5). A width-32 ConvNet takes about 0.13 s per step on 2 CPU cores: 2 models x 1000 "
                    "steps x 2 sets (with --baseline-subset) is about 9 minutes, 3 x 2000 x 2 about 27; the time left "
                    "is printed after the first model")
    ev.add_argument("--preset", choices=list(TRAIN_PRESETS),
                    help="model width preset (default: the distillation's width)")
    ev.add_argument("--width", type=int, help="ConvNet width of the evaluated models")
    ev.add_argument("--depth", type=int, help="ConvNet depth of the evaluated models")
    ev.add_argument("--train-steps", type=int, help="override the protocol's 1000/2000/5000 steps (half of them for a "
                    "set distilled with the small preset)")
    ev.add_argument("--seed", type=int, help="seed of the first model (model k uses seed + k)")
    ev.add_argument("--augment", choices=[m for m in AUGMENT_MODES if m != "auto"],
                    help="the augmentation's parameters: dsa (Differentiable Siamese Augmentation's, the default; "
                         "recorded as augment=true or frepo before the styles had names), frepo-code (the milder ones "
                         "of FRePo's public evaluation code), flip_crop or none")
    ev.add_argument("--lr-final-ratio", type=float, metavar="R",
                    help="the cosine decay's floor as a fraction of the learning rate (default 0: decay to zero; "
                         "FRePo's public evaluation code uses 0.01)")
    ev.add_argument("--batched", action="store_true",
                    help="train the models together in one graph (the same models; faster on a GPU, not on a CPU)")
    ev.add_argument("--compare-width", type=int, default=0, metavar="W",
                    help="also evaluate with ConvNets of width W (128: FRePo's published evaluation; slow on a CPU; "
                         "default off)")
    ev.add_argument("--baseline-subset", action="store_true",
                    help="also evaluate a random real subset of the same size")
    ev.add_argument("--only-subset", action="store_true",
                    help="evaluate only that random real subset, not the distilled set")
    ev.add_argument("--json", metavar="PATH", help="write the result as JSON")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_evaluate)


def add_audit_parser(sub) -> None:
    au = sub.add_parser("audit", help="train defenses and attack them with the membership-inference suite",
                        description="Train every defense the same way on the members, query it on members and "
                                    "non-members, and attack it with the whole suite: threshold and trained attacks, "
                                    "LiRA (Membership Inference Attacks From First Principles) and RMIA (Low-Cost "
                                    "High-Power Membership Inference Attacks) over reference runs that repeat the "
                                    "defense on random halves of the universe, and attacks on a released synthetic "
                                    "set. Every run is cached in DIR, so a killed audit resumes and re-scoring "
                                    "retrains nothing. Writes DIR/results.json and the report (report.html, report.md, "
                                    "figures).")
    cli_args.add_audit_args(au)
    au.add_argument("--out", required=True, metavar="DIR",
                    help="output folder (results.json, report, cache of every run)")
    au.set_defaults(func=cmd_audit)


def add_run_parser(sub) -> None:
    rn = sub.add_parser("run", help="the whole pipeline with a preset: defenses, audit, report",
                        description="The main job: every preset defense, every attack, results.json (and the report) "
                                    "in reports/<dataset>-<preset>/.")
    cli_args.add_audit_args(rn)
    rn.add_argument("--out", metavar="DIR", help="default: reports/<dataset>-<preset>")
    rn.set_defaults(func=cmd_audit)


def add_report_parser(sub) -> None:
    rp = sub.add_parser("report", help="render results.json into HTML, Markdown and figures",
                        description="Render DIR/results.json into a self-contained report.html, report.md, results.csv "
                                    "and five PNG figures: ROC curves, the privacy/utility frontier, attack AUC over "
                                    "training steps, released images beside their members, per-class leakage.")
    rp.add_argument("dir", metavar="DIR", help="the audit's output folder (holding results.json)")
    rp.set_defaults(func=cmd_report)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with exposure_warnings_on_one_line():
            return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
