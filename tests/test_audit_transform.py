"""The audit's one input normalisation: fixed (no statistic of the data) when a defense
claims differential privacy and the data are pixels, so the DP guarantee covers the model
the attacks query; fitted (and said so) on other data."""
import json

import numpy as np
import pytest

from mi_defense.auditing import Audit
from mi_defense.errors import UserError
from tests.test_audit import tiny, tiny_config  # noqa: F401  (the fixture)


@pytest.fixture
def unit(tmp_path):
    """Values in [0, 1], as pixels scaled to [0, 1] are."""
    rng = np.random.default_rng(0)
    path = tmp_path / "unit.npz"
    np.savez(path, x_train=rng.random((300, 12)).astype(np.float32), y_train=np.arange(300) % 10,
             x_test=rng.random((60, 12)).astype(np.float32), y_test=np.arange(60) % 10)
    return str(path)


def audit(data, out, **kw):
    return Audit(tiny_config(data, **kw), out, progress=False, log=lambda s: None)


def test_dp_defense_makes_the_audit_normalisation_fixed_and_its_statement_says_so(unit, tmp_path):
    dp = audit(unit, tmp_path / "dp", defenses=("none", "dpsgd:eps=8"))
    assert dp.transform.is_fixed and "fixed" in dp.ctx.normalisation and "not fitted" in dp.ctx.normalisation
    assert json.loads((tmp_path / "dp" / "training_config.json").read_text())["transform"] == "fixed"
    plain = audit(unit, tmp_path / "plain", defenses=("none",))
    assert not plain.transform.is_fixed and "does not cover" in plain.ctx.normalisation
    assert "transform" not in json.loads((tmp_path / "plain" / "training_config.json").read_text())
    assert audit(unit, tmp_path / "forced", defenses=("none",), transform="fixed").transform.is_fixed
    fitted = audit(unit, tmp_path / "fitted", defenses=("dpsgd:eps=8",), transform="fitted")
    assert not fitted.transform.is_fixed and "does not cover" in fitted.ctx.normalisation


def test_data_that_are_not_pixels_keep_the_fitted_normalisation_and_refuse_the_fixed_one(tiny, tmp_path):  # noqa: F811
    dp = audit(tiny, tmp_path / "dp", defenses=("dpsgd:eps=8",))  # standard normal features: not pixels
    assert not dp.transform.is_fixed and "does not cover" in dp.ctx.normalisation
    with pytest.raises(UserError, match=r"values outside \[0, 1\].*fitted"):
        audit(tiny, tmp_path / "f", defenses=("none",), transform="fixed")


def test_a_folder_of_fitted_runs_is_not_reused_under_the_fixed_normalisation(unit, tmp_path):
    audit(unit, tmp_path / "a", defenses=("none",))
    with pytest.raises(UserError, match=r"other settings \(transform differ\)"):
        audit(unit, tmp_path / "a", defenses=("none",), transform="fixed")
    with pytest.raises(UserError, match="transform 'whiten' unknown"):
        tiny_config(unit, transform="whiten")
