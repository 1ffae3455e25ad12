"""``mi-defense canary``: canary audits of the DP mechanisms, which a broken mechanism fails.

Two audits: one DP step, white-box, many trials (``audit.canary``), and a whole defense
from one training run with randomly included canaries (``--one-run``, ``audit.one_run``).
"""
from __future__ import annotations

from pathlib import Path

from mi_defense.config import EPSILON, RUN_PRESETS
from mi_defense.errors import UserError


def _check_common(args) -> None:
    from mi_defense.io import check_writable_file

    if args.json:
        check_writable_file(args.json)
    if args.into and not (Path(args.into) / "results.json").is_file():
        raise UserError(f"--into {args.into}: no results.json there; give the folder of an audit (its report shows "
                        "the canaries)")
    if not 0 < args.confidence < 1:
        raise UserError(f"--confidence {args.confidence}: give a number between 0 and 1, e.g. 0.95")


def _write(args, result: dict) -> None:
    import json

    from mi_defense.auditing.canary_record import add
    from mi_defense.io import write_json

    if args.into and result.get("dataset"):
        audited = json.loads((Path(args.into) / "results.json").read_text()).get("dataset")
        if audited != result["dataset"]:
            raise UserError(f"--into {args.into}: that audit is of {audited}, this canary audit of "
                            f"{result['dataset']}; give the folder of an audit of the same data")
    if args.json:
        write_json(args.json, result)
        print(f"-> {args.json}")
    if args.into:
        print(f"-> {add(args.into, result)} (shown by mi-defense report {args.into})")


def cmd_canary(args) -> int:
    from mi_defense.auditing.canary import AUDITS, trials_to_exceed

    _check_common(args)
    if args.one_run and args.step_of:
        raise UserError("give --one-run SPEC or --step-of SPEC, not both")
    if args.one_run:
        return cmd_one_run(args)
    if args.step_of:
        from mi_defense.auditing.canary import audit_defense_step

        for flag, given in (("--epsilon", args.epsilon is not None), ("--mechanism", args.mechanism is not None)):
            if given:
                raise UserError(f"--step-of {args.step_of} takes the {flag[2:]} from the spec; drop {flag}")
        r = audit_defense_step(args.step_of, _config(args, args.step_of), trials=args.trials, broken=args.broken,
                               confidence=args.confidence, check=lambda noise: _check_calibrated(args, noise))
    else:
        if args.epsilon is None:
            raise UserError("give --epsilon E (the run's target epsilon) for the one-step audit, --step-of SPEC, or "
                            "--one-run SPEC")
        EPSILON.check(args.epsilon, "--epsilon")
        r = AUDITS[args.mechanism or "dp-frepo"](args.epsilon, trials=args.trials, broken=args.broken,
                                                 confidence=args.confidence)
    need = trials_to_exceed(r.claimed_epsilon, args.confidence)
    verdict = ("CAUGHT: the step is less private than it claims" if r.caught else
               "not caught" + ("" if args.trials >= need else " (this many trials cannot bound epsilon above the "
                                                               "claim even for a step with no noise: use --trials "
                                                               f"{need} or more)"))
    of = f" of {r.step_of}" if r.step_of else ""
    print(f"{r.mechanism} one step{of}{' with the ' + args.broken + ' broken' if args.broken else ''}: audited "
          f"epsilon >= "
          f"{r.audited_epsilon_lower_bound:.2f} at {100 * r.confidence:g}% confidence from {r.trials} releases per "
          f"input; the step claims {r.claimed_epsilon:.2f} exactly (one Gaussian step, noise multiplier "
          f"{r.noise_multiplier:.3g}, from a run calibrated to epsilon {r.run_epsilon:g}): {verdict}")
    _write(args, r.to_json())
    return 0


def _config(args, spec: str):
    """The audit configuration the audited defense belongs to (--preset, --config, --dataset, --members)."""
    from mi_defense.config import DefenseSpec, resolve_audit_config

    DefenseSpec.parse(spec)  # a malformed spec fails before any data is read
    return resolve_audit_config(args.preset, args.config, dataset=args.dataset, data_dir=args.data_dir,
                                members=args.members, seed=args.seed, defenses=(spec,))


def _check_calibrated(args, noise) -> None:
    """With --into, the audit there must have the --step-of defense, run at this noise multiplier
    (checked before any trial: a step at another multiplier would never count for it)."""
    import json

    from mi_defense.auditing.canary_record import calibrated_for
    from mi_defense.config import DefenseSpec

    if not args.into:
        return

    def identity(text: str) -> tuple:  # one defense however its parameters are ordered or written (1 or 1.0)
        spec = DefenseSpec.parse(text)
        return spec.name, sorted(spec.params)

    entries = json.loads((Path(args.into) / "results.json").read_text()).get("defenses", [])
    ours = [e for e in entries if identity(e.get("name", "")) == identity(args.step_of)]
    if not ours:
        raise UserError(f"--into {args.into}: that audit has no defense {args.step_of} (it has "
                        f"{', '.join(e.get('name', '?') for e in entries) or 'none'}); give one of its DP defenses")
    sigma = (ours[0].get("metadata") or {}).get("noise_multiplier")
    if sigma is not None and not calibrated_for({"noise_multiplier": noise.noise_multiplier}, sigma):
        raise UserError(f"--into {args.into}: its {args.step_of} ran at noise multiplier {sigma:.6g}, this step would "
                        f"run at {noise.noise_multiplier:.6g}; give the --config, --dataset and --members of that "
                        "audit")


def cmd_one_run(args) -> int:
    from mi_defense.auditing.one_run import audit_one_run

    if args.broken == "clip":
        raise UserError("the one-run audit breaks only the noise (--break noise); --break clip is for the one-step "
                        "audit")
    cfg = _config(args, args.one_run)
    r = audit_one_run(args.one_run, cfg, canaries=args.canaries, kind=args.kind, guesses=args.guesses,
                      broken=args.broken, confidence=args.confidence)
    claim = ("no DP claim" if r.claimed_epsilon is None
             else f"claims epsilon {r.claimed_epsilon:.2f} at delta {r.delta:.2g}")
    verdict = ("CAUGHT: less private than it claims" if r.caught
               else ("not caught" if r.claimed_epsilon is not None else ""))
    print(f"{r.defense}{' with the noise broken' if r.broken else ''}, one run with {r.canaries} {r.kind} canaries "
          f"(each in with probability 1/2): {r.right} of {2 * r.guesses} guesses right, audited epsilon >= "
          f"{r.audited_epsilon_lower_bound:.2f} at {100 * r.confidence:g}% confidence; {claim}"
          f"{': ' + verdict if verdict else ''}; test accuracy {100 * r.test_accuracy:.1f}% ({r.seconds:.0f} s)")
    _write(args, r.to_json())
    return 0


def add_canary_parser(sub) -> None:
    ca = sub.add_parser("canary", help="canary audits of the DP mechanisms: epsilon lower bounds that a broken "
                        "mechanism fails",
                        description=("One step (default): run DP-FRePo's (or DP-SGD's) own update step many times on"
                                    " two neighbouring inputs (with and without a canary whose gradient is far "
                                    "above the clipping norm), each time with fresh noise, and turn the released "
                                    "updates into a Clopper-Pearson lower bound on epsilon, compared with the exact"
                                    " epsilon of that one Gaussian step (Nasr et al., 'Adversary Instantiation' and"
                                    " 'Tight Auditing of Differentially Private Machine Learning'). --one-run SPEC:"
                                    " train the whole defense once on the members plus canaries each included with "
                                    "probability 1/2, guess which were included from the released model, and bound "
                                    "epsilon from the right guesses ('Privacy Auditing with One (1) Training Run', "
                                    "Steinke, Nasr & Jagielski)."))
    ca.add_argument("--mechanism", choices=["dp-frepo", "dp-frepo-once", "dpsgd"],
                    help="one step: the mechanism whose step is audited (default dp-frepo; dp-frepo-once: one "
                    "of the release-once mechanism's releases, at the noise of a run with 4 networks)")
    ca.add_argument("--epsilon", type=float, help="one step: the run's target epsilon; the step's noise multiplier is "
                    "the one the run is calibrated to: a quick DP-FRePo run on 54 000 records (batch 1024, 500 steps), "
                    "or the dpsgd defense's tuned ConvNet recipe on 1000 members")
    ca.add_argument("--trials", type=int, default=500, help="one step: releases per neighbouring input (default 500)")
    ca.add_argument("--break", dest="broken", choices=["noise", "clip"], help="disable the noise (or, one step only, "
                    "the clipping; for dp-frepo-once the unit-norm scaling) inside the real mechanism, still claiming "
                    "the calibrated epsilon: the audit must catch it")
    ca.add_argument("--confidence", type=float, default=0.95, help="confidence of the lower bound (default 0.95)")
    ca.add_argument("--one-run", metavar="SPEC", help="audit this defense end to end from one training run, e.g. "
                    "dpsgd-linear:eps=1 (any --defense spec of the audit)")
    ca.add_argument("--step-of", metavar="SPEC", help="one step at a defense's own settings: the step of this DP "
                    "defense of the audit given by --config / --preset, --dataset and --members (e.g. "
                    "dpsgd-linear:eps=1), at the noise multiplier, clip and delta it is calibrated to there; the "
                    "audit's verdict counts a one-step audit only at the defense's own noise multiplier")
    ca.add_argument("--canaries", type=int, default=1000, help="one run: canaries, each included with probability 1/2 "
                    "(default 1000)")
    ca.add_argument("--kind", default="mislabelled", choices=["mislabelled", "noise"], help="one run: training images "
                    "outside the members with a wrong label (default), or uniform-noise images with a random label")
    ca.add_argument("--guesses", type=int, help="one run: k, guesses of 'included' (highest scores) and of 'excluded' "
                    "(lowest), fixed before scoring (default canaries / 10)")
    ca.add_argument("--preset", default="quick", choices=list(RUN_PRESETS), help="one run and --step-of: the "
                    "audit preset whose training settings the run uses (default quick)")
    ca.add_argument("--config", metavar="TOML", help="one run and --step-of: an audit TOML file (e.g. "
                    "reports/cpu-reference.toml) for the training settings and the number of members")
    ca.add_argument("--dataset", help="one run and --step-of: dataset name, .npz file or image folder (default: the "
                    "preset's)")
    ca.add_argument("--data-dir", help="one run and --step-of: folder holding the named datasets")
    ca.add_argument("--members", type=int, help="one run: members besides the canaries; --step-of: the members the "
                    "defense is calibrated for (default: the configuration's)")
    ca.add_argument("--seed", type=int, help="one run: seed of the members, canaries, their inclusion and the run "
                    "(default 0)")
    ca.add_argument("--json", metavar="FILE", help="write the result as JSON")
    ca.add_argument("--into", metavar="DIR", help="also record the result in DIR/canaries.json, beside an audit's "
                    "results.json: its report shows each DP claim with its canary audits")
    ca.set_defaults(func=cmd_canary)
