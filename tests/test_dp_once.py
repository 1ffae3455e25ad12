"""DP-FRePo released once (``mechanism=once``): one member's contribution to the released
statistic, the accountant over the releases, the known answers without noise, and a
private release that resumes without drawing a second one."""
import json

import numpy as np
import pytest

from mi_defense.accounting import (calibrate_composed_gaussian, composed_gaussian_epsilon, epsilon_for,
                                   gaussian_delta)
from mi_defense.config import DistillConfig
from mi_defense.distillation.dp_once import (SENSITIVITY, OncePlan, class_means, class_sums, krr_loss_from_statistics,
                                             krr_statistics, matching_loss, noisy_statistics, unit_rows)
from mi_defense.errors import UserError

CFG = dict(ipc=2, steps=6, width=8, depth=2, batch_real=16, init="noise", epsilon=2.0, mechanism="once", networks=2)


def _distiller(x, y, **changes):
    from mi_defense.distillation.once import OnceDistiller

    from mi_defense.distillation.api import noise_start

    cfg = DistillConfig(**{**CFG, **changes})
    x0 = noise_start(3 * cfg.ipc, (8, 8, 1), 0.0, 5)
    return OnceDistiller(cfg, x, y, 3, x0, np.repeat(np.arange(3), cfg.ipc), log=lambda s: None)


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8, 8, 1)).astype(np.float32), np.arange(n) % 3


def _statistic(d, k=0):
    """``(S, n)`` of network ``k`` as the release computes them (before noise)."""
    return d._class_sums(k), np.bincount(d.y_real, minlength=d.num_classes).astype(np.float64)


@pytest.mark.parametrize("augmentations", [0, 3])
def test_one_member_moves_the_released_statistic_by_at_most_the_sensitivity(augmentations):
    x, y = _data()
    x[5] *= 1e4  # an outlier: the unit-norm embedding bounds it as any other member
    full = _distiller(x, y, augmentations=augmentations)
    for i in (0, 5, 17):
        # same seed: the same random networks (and the same augmentations, shared by every member)
        without = _distiller(np.delete(x, i, 0), np.delete(y, i), augmentations=augmentations)
        for k in range(2):
            (s1, n1), (s2, n2) = _statistic(full, k), _statistic(without, k)
            moved = np.sqrt(((s1 - s2) ** 2).sum() + ((n1 - n2) ** 2).sum())
            assert moved <= SENSITIVITY
            if not augmentations:
                assert moved == pytest.approx(SENSITIVITY, rel=1e-6)  # the bound is reached: it is not loose
            else:  # a mean of unit vectors under different augmentations: shorter than 1, never longer
                assert 1.0 < moved < SENSITIVITY


def test_augmentations_average_unit_embeddings_and_the_steps_run():
    x, y = _data(seed=2)
    d = _distiller(x, y, augmentations=2)
    net = d.networks[0]
    e = d._embedding(net, d.real.take(np.arange(8)), 0).numpy()
    assert np.all(np.linalg.norm(e, axis=1) <= 1.0) and np.all(np.linalg.norm(e, axis=1) > 0.5)
    # a row's embedding depends on that row alone: not on its batch or position
    alone = d._embedding(net, d.real.take(np.arange(3, 4)), 0).numpy()
    np.testing.assert_allclose(alone[0], e[3], rtol=1e-5, atol=1e-7)
    d.release(progress=False)
    state = d.run(progress=False)
    assert state.step == d.cfg.steps and np.all(np.isfinite(d.x_syn.numpy()))
    with pytest.raises(UserError, match="mechanism=once"):
        DistillConfig(epsilon=1.0, init="noise", augmentations=2)


def test_the_release_computes_the_pure_functions_statistic():
    x, y = _data(seed=1)
    d = _distiller(x, y)
    f = d.networks[1].features(d.real.take(np.arange(len(x))), training=False).numpy()
    s, n = class_sums(unit_rows(f), y, 3)
    np.testing.assert_allclose(d._class_sums(1), s, rtol=1e-5, atol=1e-6)
    assert np.array_equal(n, np.bincount(y, minlength=3))


def test_the_gaussian_curve_has_its_known_values_and_matches_the_pld_accountant():
    from scipy.stats import norm

    assert gaussian_delta(0.0, 1.0) == pytest.approx(norm.cdf(0.5) - norm.cdf(-0.5), rel=1e-12)  # TV of N(0,1), N(1,1)
    assert gaussian_delta(1.0, 2.0) == pytest.approx(norm.cdf(0.5) - np.e * norm.cdf(-1.5), rel=1e-12)
    import dp_accounting
    from dp_accounting.pld.pld_privacy_accountant import PLDAccountant

    for sigma, k in ((7.46, 4), (2.0, 1), (20.0, 16)):
        acc = PLDAccountant()
        acc.compose(dp_accounting.GaussianDpEvent(sigma), k)
        assert composed_gaussian_epsilon(sigma, k, 1e-5) == pytest.approx(acc.get_epsilon(1e-5), rel=2e-3)
        # the exact curve is never above the RDP bound it replaces
        assert composed_gaussian_epsilon(sigma, k, 1e-5) <= epsilon_for(sigma, 1.0, k, 1e-5)
    s = calibrate_composed_gaussian(1.0, 4, 1e-5)
    assert composed_gaussian_epsilon(s, 4, 1e-5) <= 1.0 < composed_gaussian_epsilon(s * 0.999, 4, 1e-5)


def test_the_plan_spends_the_requested_epsilon_over_its_releases():
    cfg = DistillConfig(epsilon=1.0, mechanism="once", networks=4, init="noise")
    plan = OncePlan.for_config(cfg, 27000)
    assert plan.delta == 1e-5
    assert 0.99 <= plan.epsilon <= 1.0
    assert plan.epsilon == pytest.approx(composed_gaussian_epsilon(plan.noise_multiplier, 4, 1e-5))
    assert composed_gaussian_epsilon(plan.noise_multiplier, 5, 1e-5) > 1.0  # a fifth release would overspend
    assert plan.noise_std == pytest.approx(plan.noise_multiplier * np.sqrt(2))
    more = OncePlan.for_config(DistillConfig(epsilon=1.0, mechanism="once", networks=16, init="noise"), 27000)
    assert more.noise_multiplier > 1.9 * plan.noise_multiplier  # K releases: sigma grows about as sqrt(K)
    assert "not published" in plan.statement() and not plan.to_json()["n_private_is_public"]
    # a default delta computed from the member count would publish it: above 35 112 members it must be given
    with pytest.raises(UserError, match="needs delta set"):
        OncePlan.for_config(cfg, 54000)
    given = OncePlan.for_config(DistillConfig(epsilon=1.0, mechanism="once", delta=3e-6, init="noise"), 54000)
    assert given.delta == 3e-6 and given.epsilon <= 1.0


def test_without_noise_the_statistics_give_the_krr_loss_on_the_real_data():
    rng = np.random.default_rng(3)
    f, y, h = rng.standard_normal((50, 6)), rng.standard_normal((50, 4)), rng.standard_normal((4, 6))
    A, B = krr_statistics(f, y)
    direct = float(((f @ h.T - y) ** 2).sum())
    assert krr_loss_from_statistics(h, A, B, float((y ** 2).sum())) == pytest.approx(direct, rel=1e-10)


def test_without_noise_the_matching_loss_is_the_distance_between_class_means():
    rng = np.random.default_rng(4)
    u_real, y_real = unit_rows(rng.standard_normal((30, 5))), np.arange(30) % 3
    u_syn, l_syn = unit_rows(rng.standard_normal((6, 5))), np.repeat(np.arange(3), 2)
    s, n = class_sums(u_real, y_real, 3)
    s0, n0 = noisy_statistics(s, n, 0.0, np.random.default_rng(0))
    expect = sum(np.sum((u_syn[l_syn == c].mean(0) - u_real[y_real == c].mean(0)) ** 2) for c in range(3))
    assert matching_loss(u_syn, l_syn, class_means(s0, n0)) == pytest.approx(expect, rel=1e-12)
    noisy = noisy_statistics(np.zeros((100, 100)), np.zeros(100), 3.0, np.random.default_rng(1))
    assert noisy[0].std() == pytest.approx(3.0, rel=0.02) and noisy[1].std() == pytest.approx(3.0, rel=0.3)


def test_release_once_needs_epsilon_and_a_step_per_network():
    with pytest.raises(UserError, match="mechanism=once is a DP-FRePo mechanism"):
        DistillConfig(mechanism="once")
    with pytest.raises(UserError, match="mechanism"):
        DistillConfig(mechanism="twice", epsilon=1.0)
    with pytest.raises(UserError, match="steps=2 below networks=4"):
        DistillConfig(mechanism="once", epsilon=1.0, networks=4, steps=2, init="noise")


def test_the_release_adds_the_stated_noise_to_sums_and_counts(monkeypatch):
    from mi_defense.distillation import once

    x, y = _data(seed=3)
    d = _distiller(x, y)
    monkeypatch.setattr(once, "noise_generator", lambda: np.random.default_rng(123))
    d.release(progress=False)
    rng, expect = np.random.default_rng(123), []
    for k in range(2):
        s, n = _statistic(d, k)
        expect.append(class_means(s + d.dp.noise_std * rng.standard_normal(s.shape),
                                  n + d.dp.noise_std * rng.standard_normal(3)))
    np.testing.assert_allclose(d.means, np.stack(expect), rtol=1e-5, atol=1e-6)
    assert d.dp.noise_std == pytest.approx(d.dp.noise_multiplier * SENSITIVITY)
    with pytest.raises(UserError, match="released its statistics already"):
        d.release(progress=False)


@pytest.mark.slow
def test_release_once_resumes_from_its_release_without_drawing_another(tmp_path):
    x, y = _data(60, seed=2)
    a, b = _distiller(x, y), _distiller(x, y)
    start = a.x_syn.numpy().copy()
    a.run(checkpoint=tmp_path / "ck.npz", progress=False, stop_after=3)
    means = a.means.copy()
    b.run(checkpoint=tmp_path / "ck.npz", resume=True, progress=False)
    assert b.state.step == 6 and np.array_equal(b.means, means)
    a.run(progress=False)  # the same distiller continues: it does not release again
    assert np.array_equal(a.means, means) and a.state.step == 6
    np.testing.assert_allclose(b.x_syn.numpy(), a.x_syn.numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(a.x_syn.numpy() - start).max() > 1e-3  # the images moved
    assert [h["step"] for h in a.state.history] == [6] and np.isfinite(a.state.history[0]["loss"])
    fresh = _distiller(x, y)
    fresh.release(progress=False)
    assert not np.allclose(fresh.means, means)  # new noise from the operating system


@pytest.mark.slow
def test_distill_cli_with_mechanism_once_writes_a_private_release(tmp_path):
    from mi_defense.cli import main
    from mi_defense.distillation.artifact import load_distilled, private_fields

    out = tmp_path / "d"
    assert main(["distill", "--dataset", "digits", "--ipc", "2", "--steps", "10", "--width", "16", "--epsilon", "1",
                 "--mechanism", "once", "--networks", "2", "--out", str(out), "--quiet"]) == 0
    meta = json.loads((out / "PRIVATE-do-not-release" / "run.json").read_text())
    release = load_distilled(out / "distilled.npz")
    priv = release.provenance["privacy"]
    assert priv["mechanism"] == "once" and priv["networks"] == 2 and priv["epsilon"] <= 1.0
    assert priv["statement"] == meta["privacy_statement"] and "2 full-batch Gaussian releases" in priv["statement"]
    assert private_fields(release.provenance) == [] and release.x.shape == (20, 8, 8, 1)
    assert np.all(np.isfinite(release.x)) and not (out / "PRIVATE-do-not-release" / "checkpoint.npz").exists()
    assert main(["distill", "--dataset", "digits", "--mechanism", "once", "--out", str(tmp_path / "e")]) == 2


@pytest.mark.slow
def test_the_audit_runs_the_release_once_defense_and_records_its_mechanism(tmp_path):
    from mi_defense.auditing import Audit
    from tests.test_audit import REF0, tiny_config

    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"
    np.savez(data, x_train=rng.standard_normal((300, 12)).astype(np.float32), y_train=np.arange(300) % 10,
             x_test=rng.standard_normal((60, 12)).astype(np.float32), y_test=np.arange(60) % 10)
    a = Audit(tiny_config(str(data), defenses=("frepo:ipc=1,eps=8,mechanism=once,networks=2",)), tmp_path / "a",
              progress=False, log=lambda s: None)
    spec = a.specs[0]
    assert a.defenses[spec.key].resolved() == {"mechanism": "once", "networks": 2, "init": "smooth-noise"}
    a.train_run(spec, REF0)
    meta = a._load(spec, REF0)["meta"]
    assert meta["mechanism"] == "once" and meta["networks"] == 2 and meta["epsilon"] <= 8
    assert "full-batch Gaussian releases" in meta["privacy_statement"] and "clip" not in meta


def test_the_new_fields_leave_the_hash_of_per_step_runs_alone():
    from mi_defense.data.split import Split
    from mi_defense.distillation.api import run_hash

    sp = Split(np.arange(10), np.zeros(0, np.int64), np.arange(10, 20), "train", 1, "fp")
    per_step = DistillConfig(epsilon=1.0, init="noise")
    # checkpoints of per-step runs made before the release-once fields existed still resume
    assert run_hash(per_step, sp) == run_hash(DistillConfig(epsilon=1.0, init="noise", networks=9), sp)
    assert run_hash(DistillConfig(epsilon=1.0, init="noise", mechanism="once"), sp) != run_hash(per_step, sp)


@pytest.mark.parametrize("broken", [None, "noise", "clip"])
def test_the_canary_audit_of_one_release_catches_a_broken_release(broken):
    from mi_defense.auditing.canary import audit_dp_frepo_once_release, trials_to_exceed

    r = audit_dp_frepo_once_release(1.0, trials=200, broken=broken)
    assert r.mechanism == "dp-frepo-once" and r.noise_multiplier == pytest.approx(7.46, rel=1e-3)
    assert trials_to_exceed(r.claimed_epsilon) <= 200  # enough trials to catch a broken release
    if broken is None:
        assert not r.caught and r.audited_epsilon_lower_bound <= r.claimed_epsilon
    else:  # without noise, or with the canary's embedding at its own (large) norm, the release is caught
        assert r.caught and r.audited_epsilon_lower_bound > 3 * r.claimed_epsilon


def test_one_step_audits_of_dp_frepo_belong_to_the_frepo_rows_of_their_mechanism():
    from mi_defense.auditing.canary_record import for_defense
    from mi_defense.config import DefenseSpec

    rows = [{"mechanism": "dp-frepo", "run_epsilon": 1.0, "noise_multiplier": 9.1},
            {"mechanism": "dp-frepo-once", "run_epsilon": 1.0, "noise_multiplier": 7.46}]
    per_step, once = DefenseSpec.parse("frepo:ipc=10,eps=1"), DefenseSpec.parse("frepo:ipc=10,eps=1,mechanism=once")
    assert for_defense(rows, per_step, 9.1) == rows[:1] and for_defense(rows, once, 7.46) == rows[1:]
    # an update audited at another noise multiplier (another record count, steps or epsilon) is not this defense's
    assert for_defense(rows, per_step, 1.98) == [] and for_defense(rows, per_step, None) == []
    one_run = {"defense": "frepo:ipc=10,eps=1", "canaries": 100, "noise_multiplier": None}
    assert for_defense([one_run], per_step, 9.1) == [one_run]  # a one-run audit trained this very defense


def test_a_delta_it_cannot_default_is_refused_before_anything_is_written(tmp_path, capsys):
    from mi_defense.cli import main

    rng = np.random.default_rng(0)
    data = tmp_path / "many.npz"  # 36 000 members by default (a fifth held out as test): 1e-5 is not below 1/n^1.1
    np.savez(data, x_train=rng.integers(0, 255, (50000, 8, 8, 1), dtype=np.uint8), y_train=np.arange(50000) % 3)
    out = tmp_path / "d"
    assert main(["distill", "--dataset", str(data), "--epsilon", "1", "--mechanism", "once", "--out", str(out)]) == 2
    assert "needs delta set (--delta)" in capsys.readouterr().err and not out.exists()
