"""``mi-defense bench``: speed and memory benchmarks of distillation, training and the attacks, as JSON."""
from __future__ import annotations

from mi_defense.errors import UserError


def cmd_bench(args) -> int:
    from mi_defense import bench
    from mi_defense.io import check_writable_file

    if args.out:
        check_writable_file(args.out, "--out")
    for flag in ("width", "depth", "models", "train_size", "batch", "steps", "ipc", "draws"):
        value = getattr(args, flag, None)
        if value is not None and value <= 0:
            raise UserError(f"--{flag.replace('_', '-')} {value}: give a positive number")

    if args.what == "distill":
        r = bench.bench_distill(args.dataset, width=args.width or 64, ipc=args.ipc, steps=args.steps or 20,
                                batch_real=args.batch_real, pool_norm=args.pool_norm, data_dir=args.data_dir,
                                jit=args.jit, out=args.out)
        print(f"FRePo step ({r['dataset']}, width {r['width']}, ipc {r['ipc']}, real batch {r['batch_real']}): "
              f"{r['seconds_per_step_median']:.3f} s/step, {r['feature_images_per_second']:.0f} images/s through the "
              f"features, {r['achieved_gflops_per_second']:.0f} GFLOP/s = {100 * r['fraction_of_matmul']:.0f}% of this "
              f"device's best matmul rate ({r['matmul_gflops_per_second']:.0f} GFLOP/s), peak RSS over the steps "
              f"{r['peak_rss_mb']:.0f} MB (TensorFlow alone {r['rss_mb_tensorflow_imported']:.0f} MB, data ready "
              f"{r['peak_rss_mb_data_ready']:.0f} MB) on {r['device']}")
        for k, p in r["phases"].items():
            print(f"  {k:<16}{p['seconds'] * 1000:8.1f} ms  {p['gflops_per_second']:6.0f} GFLOP/s  "
                  f"{100 * p['fraction_of_matmul']:4.0f}% of matmul  {100 * p['share_of_step_time']:4.0f}% of the step")
    elif args.what == "train":
        r = bench.bench_train(args.dataset, models=args.models, width=args.width or 32, depth=args.depth,
                              train_size=args.train_size, batch=args.batch, steps=args.steps or 300,
                              data_dir=args.data_dir, out=args.out)
        print(f"{r['models']} ConvNets of width {r['width']} ({r['dataset']}, {r['train_size']} examples each, batch "
              f"{r['batch']}, {r['timed_steps']} timed steps): one at a time "
              f"{r['one_at_a_time_model_steps_per_second']:.1f} model-steps/s, together "
              f"{r['batched_model_steps_per_second']:.1f} model-steps/s ({r['speedup']:.2f}x) on {r['device']}")
    elif args.what == "references":
        from mi_defense.bench.references import bench_references, best_at

        if not args.signals:
            raise UserError("bench references needs --signals DIR/signals.npz (written by every audit beside its "
                            "results.json)")
        counts = _counts(args.counts)
        r = bench_references(args.signals, defense=args.defense, counts=counts, draws=args.draws, out=args.out)
        print(f"{r['defense']}: reference attacks with fewer of the audit's {r['references_in_audit']} reference runs "
              f"({r['draws']} draws each); yardstick {r['yardstick']}, AUC {r['full']['lira_online']['auc']:.3f}")
        for k in counts:
            name, share = best_at(r, k)
            row = r["by_count"][str(k)][name]
            print(f"  {k:>2} runs: best {name:<18} AUC {row['auc']['mean']:.3f} +- {row['auc']['std']:.3f}"
                  + ("" if share is None else f", {100 * share:.0f}% of the yardstick's advantage"))
    else:
        if args.load < 0:
            raise UserError(f"--load {args.load}: give a number of busy processes >= 0")
        r = bench.bench_attacks(args.members, args.members, n_jobs=args.n_jobs, bootstrap=args.bootstrap, out=args.out,
                                limit_threads=not args.no_thread_limit, load=args.load)
        print(f"attacks on {r['n_members']} + {r['n_nonmembers']} examples "
              f"({'native threads limited' if r['limit_threads'] else 'native threads unlimited'}, "
              f"{r['load_processes']} busy processes alongside): {r['seconds_total']:.1f} s in total")
        for k, v in r["seconds"].items():
            print(f"  {k:<30}{v:8.1f} s   AUC {r['auc'][k]:.3f}")
    if args.out:
        print(f"-> {args.out}")
    return 0


def _counts(text: str) -> list:
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UserError(f"--counts {text!r}: give reference-run counts >= 1 separated by commas, e.g. 1,2,4,8")
    return counts


def add_bench_parser(sub, data_dir_arg) -> None:
    from mi_defense.config import NORMS

    bn = sub.add_parser("bench", help="speed and memory benchmarks, written as JSON",
                        description="distill: seconds per FRePo outer step (median after warm-up), feature throughput, "
                                    "achieved GFLOP/s as a fraction of the device's measured matmul rate (whole step "
                                    "and per phase), peak RSS against TensorFlow's own, and device. train: "
                                    "model-steps/s of several ConvNets trained one at a time and together in one "
                                    "graph. attacks: wall time of every threshold attack and the four trained attacks "
                                    "on simulated outputs of 10 classes. references: every reference attack re-scored "
                                    "from an audit's signals.npz with 1, 2, 4, ... of its reference runs (whole "
                                    "complementary pairs), against LiRA online with all of them.")
    bn.add_argument("what", choices=["distill", "train", "attacks", "references"],
                    help="what to time (references: attack power with fewer reference runs, from an audit's signals)")
    bn.add_argument("--dataset", default="mnist", help="distill: real data for the step (default mnist)")
    data_dir_arg(bn)
    bn.add_argument("--width", type=int,
                    help="distill: pool ConvNet width (default 64); train: ConvNet width (default 32)")
    bn.add_argument("--depth", type=int, default=3, help="train: ConvNet depth (default 3)")
    bn.add_argument("--models", type=int, default=8,
                    help="train: models trained one at a time, then together (default 8)")
    bn.add_argument("--train-size", type=int, default=500,
                    help="train: random training examples per model (default 500)")
    bn.add_argument("--batch", type=int, default=256, help="train: batch size (default 256)")
    bn.add_argument("--ipc", type=int, default=10, help="distill: synthetic images per class (default 10)")
    bn.add_argument("--steps", type=int, help="distill: timed steps after 3 warm-up steps (default 20); "
                                              "train: steps per model, the first 100 untimed (default 300)")
    bn.add_argument("--batch-real", type=int, help="distill: real batch (default 256 for width <= 64, else 1024)")
    bn.add_argument("--pool-norm", default="batch", choices=NORMS,
                    help="distill: normalisation of the pool ConvNets (default batch)")
    bn.add_argument("--jit", action="store_true",
                    help="distill: compile the step with XLA (faster on GPU, slower on CPU)")
    bn.add_argument("--members", type=int, default=20000, help="attacks: members (= non-members)")
    bn.add_argument("--n-jobs", type=int, default=-1,
                    help="attacks: parallel jobs for the trained attacks (-1: all cores)")
    bn.add_argument("--bootstrap", type=int, default=200, help="attacks: bootstrap resamples for the CIs")
    bn.add_argument("--no-thread-limit", action="store_true",
                    help="attacks: let BLAS/OpenMP use every core (no threadpoolctl limit)")
    bn.add_argument("--load", type=int, default=0, metavar="N",
                    help="attacks: run N busy processes alongside (a shared machine)")
    bn.add_argument("--signals", metavar="NPZ", help="references: an audit's signals.npz")
    bn.add_argument("--defense", default="none", help="references: the defense key in the signals (default none)")
    bn.add_argument("--counts", default="1,2,4,8", help="references: reference-run counts to compare (default 1,2,4,8)")
    bn.add_argument("--draws", type=int, default=10, help="references: random subsets of runs per count (default 10)")
    bn.add_argument("--out", metavar="JSON", help="write the figures as JSON")
    bn.set_defaults(func=cmd_bench)
