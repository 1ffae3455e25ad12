"""LiRA at full strength: the scaled logit from logits, augmented queries, RMIA's a tuned
without a run's complementary partner."""
import numpy as np
import pytest

import attacks
from attacks import ReferenceInputs, rmia
from attacks.queries import KINDS, shift, views
from attacks.signals import scaled_logit
from mi_defense.data import universe_masks
from mi_defense.data.split import partner


def test_scaled_logit_of_a_margin_of_40_is_40():
    # two classes: z_y - z_other; three: z_y - log(e^0 + e^0) = 40 + log 2 - log 2
    assert scaled_logit(np.array([[40.0, 0.0]]), np.array([0]))[0] == pytest.approx(40.0)
    assert scaled_logit(np.array([[0.0, 0.0, 40.0 + np.log(2.0)]]), np.array([2]))[0] == pytest.approx(40.0)
    ref = ReferenceInputs.from_logits(np.array([[40.0, 0.0], [0.0, 40.0]]), [np.array([[40.0, 0.0], [0.0, 40.0]])] * 2,
                                      labels=np.array([0, 1]), reference_in=np.array([[True, False], [False, True]]),
                                      membership=[True, False])
    t, r = ref.logit_signal()
    assert t[:, 0] == pytest.approx([40.0, 40.0]) and r.shape == (2, 2, 1)
    # the old route through probabilities stops near log((1 - 1e-12) / 1e-12) = 27.6
    clipped = ReferenceInputs(target=np.array([1.0, 1.0]), references=np.ones((2, 2)), reference_in=ref.reference_in,
                              membership=[True, False]).logit_signal()[0]
    assert clipped[0, 0] == pytest.approx(27.63, abs=0.01)


def saturated(n=1000, m=8, seed=0):
    """Members at margins around 40, non-members around 32: all above the probability cap."""
    rng = np.random.default_rng(seed)
    masks = universe_masks(n, m + 2, seed=seed)  # run 0 the target, its partner dropped
    margin = np.where(masks, 40.0, 32.0) + rng.standard_normal(masks.shape)
    logits = np.zeros(masks.shape + (2,))
    logits[..., 0] = margin  # true class 0
    labels = np.zeros(n, np.int64)
    return logits, labels, masks


def test_lira_from_logits_finds_members_that_probabilities_cannot_tell_apart():
    logits, labels, masks = saturated()
    refs = list(range(2, masks.shape[1]))
    from_logits = ReferenceInputs.from_logits(logits[:, 0], [logits[:, k] for k in refs], labels, masks[:, refs],
                                              masks[:, 0])
    p = lambda z: attacks.signals.true_class(attacks.signals.softmax(z), labels)
    from_probs = ReferenceInputs(target=p(logits[:, 0]), references=np.stack([p(logits[:, k]) for k in refs], axis=1),
                                 reference_in=masks[:, refs], membership=masks[:, 0])
    good = attacks.run(reference=from_logits, attacks=["lira_online_fixed", "lira_offline"], bootstrap=0)
    capped = attacks.run(reference=from_probs, attacks=["lira_online_fixed"], bootstrap=0)
    assert good["lira_online_fixed"]["auc"] > 0.99 and good["lira_offline"]["auc"] > 0.99
    assert abs(capped["lira_online_fixed"]["auc"] - 0.5) < 0.05  # every probability rounds to 1
    # RMIA reads the same inputs as probabilities: the sigmoid of the scaled logit is the softmax's p_y
    t, r = from_logits.probabilities()
    assert t[:, 0] == pytest.approx(from_probs.target[:, 0], rel=1e-12) and r.shape == (1000, 8, 1)


def test_augmented_queries_are_shifts_and_flips_and_average_in_lira():
    x = np.arange(2 * 3 * 4).reshape(2, 3, 4, 1).astype(float)
    assert shift(x, 1, 0)[0, :, :, 0].tolist() == [x[0, 0, :, 0].tolist(), x[0, 0, :, 0].tolist(),
                                                   x[0, 1, :, 0].tolist()]
    assert shift(x, 0, -1)[0, 0, :, 0].tolist() == [1.0, 2.0, 3.0, 3.0]
    got = list(views(x, "flips_shifts"))
    assert (len(got) == KINDS["flips_shifts"] == 10 and np.array_equal(got[0], x)
            and np.array_equal(got[5], x[:, :, ::-1]))
    # logits of A queries (A, N, C) give one scaled-logit column per query
    logits, labels, masks = saturated(n=400, m=4)
    q = np.stack([logits, logits + np.array([0.5, 0.0])], axis=0)  # (A=2, N, runs, C)
    ref = ReferenceInputs.from_logits(q[:, :, 0], [q[:, :, k] for k in (2, 3, 4, 5)], labels, masks[:, 2:6],
                                      masks[:, 0])
    assert ref.target.shape == (400, 2) and ref.references.shape == (400, 4, 2)
    assert ref.target[:, 1] - ref.target[:, 0] == pytest.approx(np.full(400, 0.5))
    assert attacks.run(reference=ref, attacks=["lira_online_fixed"], bootstrap=0)["lira_online_fixed"]["auc"] > 0.99


def test_rmia_a_is_tuned_without_each_runs_complementary_partner(monkeypatch):
    masks = universe_masks(300, 6, seed=0)
    rng = np.random.default_rng(0)
    probs = np.clip(0.5 + 0.2 * masks + 0.05 * rng.standard_normal(masks.shape), 0.01, 0.99)
    probs[0, :] = np.arange(6) / 10 + 0.05  # example 0 tells which run plays the target
    seen = []
    real = rmia.rmia_scores

    def spy(target_p, ref_p, ref_in, **kw):
        j = int(round((target_p[0, 0] - 0.05) * 10))
        seen.append(j)
        assert not any(np.array_equal(ref_in[:, k], ~masks[:, j])
                       for k in range(ref_in.shape[1])), f"run {partner(j)} used for {j}"
        assert ref_in.shape[1] == 4
        return real(target_p, ref_p, ref_in, **kw)

    monkeypatch.setattr(rmia, "rmia_scores", spy)
    rmia.tune_a(probs, masks)
    assert sorted(set(seen)) == list(range(6))
    assert rmia.held_out_references(masks, 2) == [0, 1, 4, 5]
    assert rmia.tune_a(probs[:, :2], masks[:, :2]) == rmia.A_DEFAULT  # one pair: no references left


def test_many_targets_known_answer_and_leave_one_out_of_the_primary_attack():
    from mi_defense.auditing.evidence import leave_one_out_audit, many_targets

    rs = [{"auc": a, "tpr_at_fpr": {"0.001": t}} for a, t in ((0.5, 0.0), (0.6, 0.01), (0.7, 0.02))]
    got = many_targets(rs, "lira_online_fixed")
    assert got["auc_mean"] == pytest.approx(0.6) and got["auc_se"] == pytest.approx(0.1 / np.sqrt(3))
    assert (got["tpr_mean"] == pytest.approx(0.01) and got["tpr_se"] == pytest.approx(0.01 / np.sqrt(3))
            and got["targets"] == 3)
    # on logits: a leak above the probability cap is found by every leave-one-out target, null logits are at chance
    logits, labels, masks = saturated(n=1000, m=6)
    runs = [logits[:, k] for k in range(8)]
    summaries, primary = leave_one_out_audit(runs, runs, labels, masks, (), "lira_online_fixed", (1e-3,), 0)
    assert primary["targets"] == 8 and primary["auc_mean"] > 0.99 and summaries["lira_online_fixed"]["n_targets"] == 8
    null = [np.random.default_rng(k).normal(size=(1000, 2)) + [35.0, 0.0] for k in range(8)]
    _, p0 = leave_one_out_audit(null, null, labels, masks, (), "lira_online_fixed", (1e-3,), 0)
    assert abs(p0["auc_mean"] - 0.5) < 3 * p0["auc_se"] + 0.01 and p0["auc_se"] > 0
    # a primary attack on the outputs alone is scored on each run's logits
    _, thr = leave_one_out_audit(runs, runs, labels, masks, (), "threshold_logit_confidence", (1e-3,), 0)
    assert thr["attack"] == "threshold_logit_confidence" and thr["auc_mean"] > 0.99


def test_results_schema_reads_the_new_fields_and_older_results():
    import json
    from pathlib import Path

    from mi_defense.auditing.results_check import ResultsError, check_results

    path = Path(__file__).resolve().parents[1] / "reports" / "fashion_mnist-cpu" / "results.json"
    results = json.loads(path.read_text())
    check_results(results)  # a committed record that holds neither field: both are optional
    e = results["defenses"][0]
    e["leave_one_out_primary"] = {"attack": "lira_online_fixed", "targets": 16, "fpr": "0.001", "auc_mean": 0.525,
                                  "auc_se": 0.008, "tpr_mean": 0.002, "tpr_se": 0.001}
    e["strongest_release_attack"] = dict(e["primary_attack"])
    check_results(results)
    e["leave_one_out_primary"]["auc_mean"] = float("nan")
    with pytest.raises(ResultsError, match="leave_one_out_primary.auc_mean"):
        check_results(results)


def test_augmented_queries_are_declared_in_the_config_and_keep_older_folders(tmp_path):
    import json

    from mi_defense.auditing import Audit, AuditConfig
    from mi_defense.errors import UserError

    with pytest.raises(UserError, match="augmented_queries 'rotations' unknown"):
        AuditConfig(augmented_queries="rotations")
    quiet = dict(progress=False, log=lambda s: None)
    cfg = AuditConfig(dataset="digits", members=100, nonmembers=100, defenses=("none",))
    Audit(cfg, tmp_path / "a", **quiet)
    # as before the setting
    assert "augmented_queries" not in json.loads((tmp_path / "a" / "training_config.json").read_text())
    with pytest.raises(UserError, match="augmented_queries differ"):  # runs without query views cannot serve them
        Audit(AuditConfig(**{**cfg.__dict__, "augmented_queries": "shifts"}), tmp_path / "a", **quiet)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "tab.npz", x_train=rng.random((200, 5)).astype(np.float32), y_train=np.arange(200) % 2)
    with pytest.raises(UserError, match="needs images"):
        Audit(AuditConfig(dataset=str(tmp_path / "tab.npz"), defenses=("none",), augmented_queries="shifts"),
              tmp_path / "b", **quiet)
