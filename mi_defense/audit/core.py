"""Training and scoring of an audit (``Audit``, ``run_audit``).

* **Universe**: the split's members followed by its non-members.
* **Targets**: each defense trained on the members (``targets`` seeds), queried on the
  universe; its test accuracy is the utility, its train accuracy and the gap are recorded
  with the training recipe.
* **Reference runs** (for LiRA and RMIA) repeat the whole defense pipeline (for FRePo:
  distil, then train on the synthetic set) on halves of the universe drawn in
  complementary pairs (``data.split.universe_masks``); each example is in exactly half of
  the runs.
* Every run's outputs on the universe are cached in ``OUT/cache/<defense>/<run>.npz``
  (written atomically), so attacks are re-scored without retraining and a killed audit
  resumes where it stopped. ``shard=(i, n)`` runs only every n-th run starting at i, so
  machines sharing ``OUT`` can split the work; a later call without a shard trains what
  is missing, merges and scores.
* Scoring: every attack against the target, LiRA/RMIA on the scaled logit from the logits
  (of the stored query views with ``augmented_queries``), release attacks calibrated over
  the reference runs' released sets only (``attacks.release_lira``), and leave-one-out
  over the reference runs. The declared evidence (``audit.evidence``): the primary attack
  (also its leave-one-out mean), the release attack for defenses that release data, the
  epsilon lower bound, the strongest attack and release attack chosen on held-out examples.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import numpy as np

import attacks
from attacks.metrics import class_slices, summarise_over_targets
from mi_defense.audit import artifacts, canary_record, plan, signals
from mi_defense.audit.cache import RunCache
from mi_defense.config.audit import AuditConfig, changed_settings
from mi_defense.audit.plan import RunId
from mi_defense.audit.results import SCHEMA
from mi_defense.audit.evidence import declared_evidence, leave_one_out_audit, strongest_release
from mi_defense.audit.inputs import audit_transform, query_logits, release_inputs
from mi_defense.data import Split, load_dataset, make_split, universe_masks
from mi_defense.defenses import DefenseContext, make_defense
from mi_defense.accounting import dp_delta
from mi_defense.errors import UserError
from mi_defense.config import DefenseSpec, augment_name
from mi_defense.models import check_depth
from mi_defense.tfenv import machine
from mi_defense.io import clean_stale_temp, package_versions, read_json, to_json, write_json

if TYPE_CHECKING:
    from mi_defense.audit.executors import Executor

UNDERTRAINED_BELOW = 0.95  # an undefended target under this train accuracy underestimates leakage


def config_dict(cfg: AuditConfig) -> dict:
    return dataclasses.asdict(cfg)

class Audit:
    """One audit in ``out_dir``; ``run()`` trains what is missing, ``score()`` writes results.json."""

    def __init__(self, cfg: AuditConfig, out_dir, progress: bool = True, log=print, writes: bool = True,
                 executor: Optional["Executor"] = None):
        self.cfg = cfg.validate()
        self.out = Path(out_dir)
        self.cache = RunCache(self.out)
        self.progress = progress
        self.log = log
        self.ds = load_dataset(cfg.dataset, cfg.data_dir)
        # Everything is checked before anything is written: a failed audit leaves no file
        # that could decide the next one's split or settings.
        specs = [DefenseSpec.parse(d) for d in cfg.defenses]
        self.transform = audit_transform(cfg.transform, self.ds.x_train, self.ds.input_shape, any(s.claims_dp for s in specs))
        self.ctx = DefenseContext(self.ds.num_classes, self.ds.input_shape, cfg.train, cfg.real_steps, cfg.distill, progress=progress,
                                  real_recipe=cfg.real_recipe, fixed_normalisation=self.transform.is_fixed)
        made = {s: make_defense(s, self.ctx) for s in specs if not plan.sized_later(s)}  # rejects bad parameters
        ipc = next((made[s].params.get("ipc", cfg.distill.ipc) for s in specs if s.name == "frepo"), 10)  # checked spec values
        self.specs = plan.resolve_subset_size(specs, ipc * self.ds.num_classes)  # `subset` matches the first FRePo set
        self.defenses = {s.key: made.get(s) or make_defense(s, self.ctx) for s in self.specs}
        plan.check_kept_results(self.out, self.specs)
        check_depth(self.ds.input_shape, cfg.train.depth)
        if any(d.releases for d in self.defenses.values()):
            check_depth(self.ds.input_shape, cfg.distill.depth)
        self._check_attacks()
        if cfg.augmented_queries != "none" and len(self.ds.input_shape) != 3:
            raise UserError(f"augmented_queries = '{cfg.augmented_queries}' needs images; {cfg.dataset} holds feature vectors")
        self.split = self._split()
        self.universe = np.r_[self.split.members, self.split.nonmembers]
        self.n_members = len(self.split.members)
        self.membership = np.arange(len(self.universe)) < self.n_members
        self.x_u = self.transform(self.ds.x_train[self.universe])
        self.y_u = self.ds.y_train[self.universe]
        x_test, self.y_test = self.split.test_data(self.ds)
        self.x_test = self.transform(x_test)
        self.log(f"split: {self.n_members} members, {len(self.split.nonmembers)} held-out non-members, {len(self.split.test)} test "
                 f"examples ({'the test set' if self.split.test_source == 'test' else 'held back from the pool'}); seed {cfg.seed}")
        self.masks = universe_masks(len(self.universe), cfg.references, seed=cfg.seed + 7) if cfg.references else np.zeros((len(self.universe), 0), bool)
        plan.check_memory(self.defenses.values(), self.n_members, len(self.universe), self.ds.input_shape, self.ds.num_classes)
        training_cfg = self._check_training_config()
        if not writes:  # a worker of a distributed executor: it computes runs, the driver writes them
            return
        if executor is not None:
            executor.check()  # e.g. Ray importable and its cluster reachable
        self.out.mkdir(parents=True, exist_ok=True)
        if not (self.out / "split.json").is_file():
            self.split.save(self.out / "split.json")
        if not (self.out / "training_config.json").is_file():
            write_json(self.out / "training_config.json", training_cfg)

    # Settings that change what the cached runs contain; the rest (attacks, bootstrap,
    # FPRs, defense list, n_jobs) only change scoring and may differ between calls.
    # ``max_members`` only shapes the split, which split.json guards.
    _SCORING_ONLY = ("attacks", "bootstrap", "fprs", "n_jobs", "defenses", "data_dir", "primary_attack", "release_attack",
                     "confidence", "max_members")
    # Bump when the reference-run design changes (which examples each run trains on).
    REFERENCE_DESIGN = "complementary-pairs/1"

    def _check_training_config(self) -> dict:
        """The settings that shape the cached runs; refuse a folder holding runs of other settings."""
        cfg = {k: v for k, v in config_dict(self.cfg).items() if k not in self._SCORING_ONLY}
        cfg["reference_design"] = self.REFERENCE_DESIGN
        if cfg.get("augmented_queries") == "none":  # runs without query views, as every folder before the setting
            cfg.pop("augmented_queries")
        cfg.pop("transform", None)  # as resolved: a fitted normalisation is what every folder before the setting holds
        if self.transform.is_fixed:
            cfg["transform"] = "fixed"
        cfg = json.loads(to_json(cfg))
        if isinstance(cfg.get("distill"), dict):  # the learning rate in effect, whether set or implied by the init
            cfg["distill"]["lr"] = self.cfg.distill.image_lr
        path = self.out / "training_config.json"
        if path.is_file():
            old = {k: v for k, v in read_json(path, "the audit folder's training settings").items() if k not in self._SCORING_ONLY}
            for table in ("train", "real_recipe"):  # a recorded true/false/old name: the style it meant (dsa, none)
                rec = old.get(table)
                if isinstance(rec, dict) and "augment" in rec:
                    old[table] = dict(rec, augment=augment_name(rec["augment"], str(path)))
            diff = changed_settings(old, cfg)
            if diff:
                raise UserError(f"{self.out} holds runs trained with other settings ({', '.join(diff)} differ); "
                                "use a new --out folder or the same settings")
        return cfg

    def _check_attacks(self) -> None:
        """Requested attacks must apply to at least one defense (an attack on a released set
        needs a defense that releases one; LiRA and RMIA need reference runs)."""
        if not self.cfg.attacks:
            return
        possible = set(attacks.THRESHOLD + attacks.TRAINED)
        if self.cfg.references:
            possible |= set(attacks.REFERENCE)
        if any(d.releases for d in self.defenses.values()):
            possible |= set(attacks.registry.RELEASE)
        if not possible & set(self.cfg.attacks):
            raise UserError(f"none of the requested attacks ({', '.join(self.cfg.attacks)}) applies to these defenses"
                            f"{' with 0 reference runs' if not self.cfg.references else ''}; choose from {', '.join(sorted(possible))}")

    # ------------------------------------------------------------------ set-up
    def _split(self) -> Split:
        """The configured split; a ``split.json`` already in the folder must be that very split."""
        cfg, ds = self.cfg, self.ds
        pool = len(ds.x_train) - (0 if ds.x_test is not None else (cfg.test or len(ds.x_train) // 5))
        n_m = cfg.members if cfg.members is not None else min(pool // 2, cfg.max_members or pool)
        n_n = cfg.nonmembers if cfg.nonmembers is not None else min(n_m, pool - n_m)
        split = make_split(ds, n_m, n_n, cfg.test, seed=cfg.seed)
        path = self.out / "split.json"
        if path.is_file():
            saved = Split.load(path)
            saved.check(ds)
            if saved.hash != split.hash:
                raise UserError(f"{path} holds another split ({len(saved.members)} members, {len(saved.nonmembers)} non-members, "
                                f"{len(saved.test)} test, seed {saved.seed}) than this audit asks for ({n_m}, {n_n}, {len(split.test)}, "
                                f"seed {cfg.seed}); use a new --out folder or the same settings")
        return split

    def jobs(self) -> List[Tuple[DefenseSpec, RunId]]:
        return plan.jobs(self.specs, self.cfg.targets, self.cfg.references)

    def _stale(self, spec: DefenseSpec, run: RunId, meta: Optional[dict] = None) -> Optional[str]:
        return self.cache.stale(spec, run, self.defenses[spec.key].resolved(), meta)

    # ------------------------------------------------------------------ training
    def _train_positions(self, run: RunId) -> np.ndarray:
        if run.is_target:
            return np.arange(self.n_members)
        return np.flatnonzero(self.masks[:, run.index])

    def _run_seed(self, run: RunId) -> int:
        return run.seed(self.cfg.seed)

    def compute_run(self, spec: DefenseSpec, run: RunId) -> Tuple[dict, Dict[str, np.ndarray]]:
        """Train one run and return what its cache file holds ``(meta, arrays)``; writes nothing,
        so any executor can run it anywhere the dataset is readable."""
        from mi_defense.training.evaluate import predict

        pos = self._train_positions(run)
        history = []
        ctx = self.ctx
        if run.is_target:
            def on_step(step, model):
                logits = predict(model, self.x_u)
                history.append((step, attacks.metrics.auc(-attacks.signals.cross_entropy(logits, self.y_u), self.membership)))
            ctx = dataclasses.replace(ctx, on_step=on_step)
        t0 = time.time()
        result = make_defense(spec, ctx).fit(self.x_u[pos], self.y_u[pos], self._run_seed(run))
        return self._outputs(spec, run, pos, result, history, time.time() - t0)

    def compute_runs(self, spec: DefenseSpec, runs: List[RunId]) -> List[Tuple[dict, Dict[str, np.ndarray]]]:
        """``[compute_run(spec, r) for r in runs]``, the reference runs' models trained together
        in one graph where the defense allows it (``defenses.together``); targets, which record
        their attack AUC during training, always train alone."""
        from mi_defense.defenses.together import fit_together

        refs = [r for r in runs if not r.is_target]
        if len(refs) < 2:
            return [self.compute_run(spec, r) for r in runs]
        out = {r: self.compute_run(spec, r) for r in runs if r.is_target}
        pos = [self._train_positions(r) for r in refs]
        results = fit_together(make_defense(spec, self.ctx), [(self.x_u[p], self.y_u[p], self._run_seed(r)) for r, p in zip(refs, pos)])
        for r, p, res in zip(refs, pos, results):
            out[r] = self._outputs(spec, r, p, res, [], res.metadata["seconds"])
        return [out[r] for r in runs]

    def _outputs(self, spec: DefenseSpec, run: RunId, pos: np.ndarray, result, history: list,
                 seconds: float) -> Tuple[dict, Dict[str, np.ndarray]]:
        """A fitted run's cache entry: its outputs on the universe, test accuracy and metadata."""
        from mi_defense.training.evaluate import predict

        t0 = time.time()
        logits_u = predict(result.model, self.x_u)
        test_acc = float(np.mean(np.argmax(predict(result.model, self.x_test), axis=1) == self.y_test))
        arrays = {"logits": logits_u.astype(np.float32), "train_positions": pos.astype(np.int64)}
        if self.cfg.augmented_queries != "none":
            arrays["logits_queries"] = np.stack([predict(result.model, v) for v in
                                                 attacks.queries.views(self.x_u, self.cfg.augmented_queries)]).astype(np.float32)
        rel = result.released
        if rel is not None:
            feats = predict(result.model, self.x_u, features=True)
            syn_feats = predict(result.model, rel["x"], features=True)
            arrays["release_feature_distance"] = attacks.release.nearest_distance(feats, syn_feats)
            arrays["released_x"] = rel["x"].astype(np.float32)
            arrays["released_y"] = rel["y"].astype(np.float32)
            arrays["released_labels"] = np.asarray(rel["labels"], np.int64)
            arrays["released_init_universe_positions"] = pos[rel["init_positions"]].astype(np.int64) if len(rel["init_positions"]) else np.zeros(0, np.int64)
        meta = dict(result.metadata, test_accuracy=test_acc, run=str(run), defense=str(spec), seed=self._run_seed(run),
                    wall_seconds=seconds + time.time() - t0, auc_over_steps=history)
        return meta, arrays

    def train_run(self, spec: DefenseSpec, run: RunId) -> None:
        meta, arrays = self.compute_run(spec, run)
        self.cache.write(spec, run, meta, **arrays)

    def todo(self, shard: Optional[Tuple[int, int]] = None) -> Tuple[List[Tuple[DefenseSpec, RunId]], int]:
        """The runs missing from the cache or stale (this shard's share when given), and how many jobs there are."""
        removed = clean_stale_temp(self.out)
        if removed:
            self.log(f"removed {removed} temporary file(s) left by a killed writer")
        jobs = self.jobs()
        if shard is not None:
            i, n = shard
            jobs = jobs[i::n]
        todo = []
        for s, r in jobs:
            if self.cache.has(s, r):
                why = self._stale(s, r)
                if why is None:
                    continue
                self.log(f"{why}; training it again")
            todo.append((s, r))
        if len(jobs) - len(todo):
            self.log(f"{len(jobs) - len(todo)} of {len(jobs)} runs found in the cache; {len(todo)} to train")
        return todo, len(jobs)

    def run(self, shard: Optional[Tuple[int, int]] = None, stop_after_runs: Optional[int] = None,
            executor: Optional["Executor"] = None) -> Dict[str, int]:
        """Train the runs that are missing from the cache (only this shard's share when given)
        with ``executor`` (in this process by default)."""
        from mi_defense.audit.executors import LocalExecutor

        todo, total = self.todo(shard)
        trained = (executor or LocalExecutor()).run(self, todo, stop_after_runs)
        return {"trained": trained, "cached": total - len(todo), "total": total}

    # ------------------------------------------------------------------ scoring
    def _load(self, spec, run) -> dict:
        return self.cache.load(spec, run, self.defenses[spec.key].resolved())

    def score(self, counts: Optional[Dict[str, int]] = None) -> dict:
        """Score every cached run and write ``results.json`` (once); ``counts``: what ``run`` trained."""
        cfg = self.cfg
        t0 = time.time()
        entries, exported, recorded = [], {}, canary_record.load_canaries(self.out)
        for spec in self.specs:
            targets = [self._load(spec, r) for r in plan.targets(cfg.targets)]
            refs = [self._load(spec, r) for r in plan.references(cfg.references)]
            scored = [self._score_target(spec, tgt, refs) for tgt in targets]
            per_target, release = [res for res, _ in scored], scored[0][1]
            stats = attacks.release_lira.statistics(release) if release is not None and refs else None
            exported[spec.key] = signals.defense_arrays(targets, refs, self.y_u, stats)
            main, meta = per_target[0], targets[0]["meta"]
            scores = artifacts.save_scores(self, spec, main)
            evidence = declared_evidence(main, scores, self.membership, cfg.primary,
                                         cfg.release_attack if self.defenses[spec.key].releases else None,
                                         cfg.confidence, dp_delta(self.n_members), cfg.seed, cfg.fprs, cfg.bootstrap)
            evidence["strongest_release_attack"] = strongest_release(scores, self.membership, cfg.fprs, cfg.bootstrap, cfg.seed)
            train_acc = meta.get("train_accuracy")
            entry = {
                "name": str(spec), "key": spec.key, "defense": spec.name, "params": spec.spelled_params,
                "test_accuracy": meta["test_accuracy"], "train_accuracy": train_acc,
                "generalization_gap": None if train_acc is None else train_acc - meta["test_accuracy"],
                "recipe": meta.get("recipe"),
                "undertrained": bool(spec.name == "none" and train_acc is not None and train_acc < UNDERTRAINED_BELOW),
                "claimed_epsilon": meta.get("epsilon"),
                "canary_audits": canary_record.for_defense(recorded, spec),  # mi-defense canary --into OUT
                **evidence,
                "attacks": main,
                "released_artifact": artifacts.summarise_release(self, spec, targets[0]),
                "privacy_statement": meta["privacy_statement"],
                "metadata": {k: v for k, v in meta.items() if k not in ("privacy_statement", "auc_over_steps", "train_positions")},
                "auc_over_steps": meta.get("auc_over_steps", []),
            }
            for pt in per_target[1:]:
                for r in pt.values():
                    r.pop("scores", None)
            if cfg.targets > 1:
                entry["over_targets"] = {name: summarise_over_targets([pt[name] for pt in per_target]) for name in main}
                entry["test_accuracy_over_targets"] = [t["meta"]["test_accuracy"] for t in targets]
            if len(refs) >= 4:
                entry["leave_one_out"], entry["leave_one_out_primary"] = self._leave_one_out(refs)
            entry["wall_seconds_all_runs"] = float(sum(r["meta"].get("wall_seconds") or 0.0 for r in targets + refs))
            entries.append(entry)
        results = {
            "schema": SCHEMA,
            "dataset": self.ds.name,
            "class_names": self.ds.class_names,
            "input_shape": list(self.ds.input_shape),
            "config": config_dict(cfg),
            "split": {"hash": self.split.hash, "seed": self.split.seed, "n_members": self.n_members,
                      "n_nonmembers": int(len(self.split.nonmembers)), "n_test": int(len(self.split.test)),
                      "test_source": self.split.test_source, "dataset_fingerprint": self.split.dataset_fingerprint},
            "data_files": self.ds.files,
            "versions": package_versions(),
            "machine": machine(),  # the machine that scored; training may have run elsewhere (--shard)
            "timings": {"scoring_seconds": time.time() - t0,
                        "training_seconds": {e["name"]: e["metadata"].get("wall_seconds") for e in entries},
                        "training_seconds_all_runs": {e["name"]: e["wall_seconds_all_runs"] for e in entries},
                        **({"runs": counts} if counts is not None else {})},
            "defenses": entries,
        }
        signals.save(signals.path_in(self.out), self.y_u, self.membership, self.masks[:, :cfg.references], exported,
                     {"seed": cfg.seed, "fprs": list(cfg.fprs), "augmented_queries": cfg.augmented_queries})
        write_json(self.out / "results.json", results)
        return results

    def _score_target(self, spec, tgt, refs) -> Tuple[dict, Optional["attacks.ReleaseInputs"]]:
        """Every attack on one target (``attacks.run``'s results) and the release inputs it used."""
        cfg = self.cfg
        logits = tgt["logits"].astype(np.float64)
        slices = class_slices(self.y_u, self.ds.num_classes)
        init = tgt.get("released_init_universe_positions")
        if init is not None and len(init):
            slices["init_members"] = init
        inputs = attacks.AttackInputs(labels=self.y_u, membership=self.membership, logits=logits, slices=slices)
        q = cfg.augmented_queries
        reference = attacks.ReferenceInputs.from_logits(query_logits(tgt, q), [query_logits(r, q) for r in refs], self.y_u,
                                                        self.masks[:, :len(refs)], self.membership, slices) if refs else None
        release = release_inputs(self.transform, self.x_u, self.y_u, self.ds.num_classes, self.membership, self.masks, tgt,
                                 refs, slices) if "released_x" in tgt else None
        applicable = attacks.available(inputs, reference, release)
        # e.g. no release attack without a release; an empty list runs nothing (never "all")
        names = [n for n in (cfg.attacks or applicable) if n in applicable]
        res = attacks.run(inputs, attacks=names, fprs=cfg.fprs, reference=reference,
                          release_inputs=release, bootstrap=cfg.bootstrap, seed=cfg.seed, n_jobs=cfg.n_jobs,
                          return_scores=True)
        if "release_feature_distance" in tgt and (not cfg.attacks or "release_feature" in cfg.attacks):
            score = -tgt["release_feature_distance"]
            res["release_feature"] = attacks.metrics.evaluate(score, self.membership, cfg.fprs, bootstrap=cfg.bootstrap,
                                                              seed=cfg.seed, slices=slices, name="release_feature")
            res["release_feature"]["scores"] = score.tolist()
        return res, release

    def _leave_one_out(self, refs) -> Tuple[dict, Optional[dict]]:
        c = self.cfg
        return leave_one_out_audit([query_logits(r, c.augmented_queries) for r in refs], [r["logits"] for r in refs], self.y_u,
                                   self.masks[:, :len(refs)], c.attacks, c.primary, c.fprs, c.seed, c.n_jobs)


def run_audit(cfg: AuditConfig, out_dir, shard: Optional[Tuple[int, int]] = None, progress: bool = True, log=print,
              executor: Optional["Executor"] = None) -> Optional[dict]:
    """Train what is missing (this shard's share only, when given) with ``executor`` (in this
    process by default; ``audit.executors``), then score unless sharded."""
    a = Audit(cfg, out_dir, progress=progress, log=log, executor=executor)
    counts = a.run(shard=shard, executor=executor)
    if shard is not None:
        log(f"shard {shard[0]}/{shard[1]}: trained {counts['trained']} run(s), {counts['cached']} already cached; "
            f"run the audit again without --shard to merge and score")
        return None
    return a.score(counts)
