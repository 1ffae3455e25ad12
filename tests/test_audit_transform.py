"""The audit's one input normalisation: fixed (no statistic of the data) when a defense
claims differential privacy, so the DP guarantee covers the model the attacks query."""
import json

import pytest

from mi_defense.audit import Audit
from mi_defense.errors import UserError
from tests.test_audit import tiny, tiny_config  # noqa: F401  (the fixture)


def audit(data, out, **kw):
    return Audit(tiny_config(data, **kw), out, progress=False, log=lambda s: None)


def test_dp_defense_makes_the_audit_normalisation_fixed_and_its_statement_says_so(tiny, tmp_path):  # noqa: F811
    dp = audit(tiny, tmp_path / "dp", defenses=("none", "dpsgd:eps=8"))
    assert dp.transform.is_fixed and "fixed" in dp.ctx.normalisation and "not fitted" in dp.ctx.normalisation
    assert json.loads((tmp_path / "dp" / "training_config.json").read_text())["transform"] == "fixed"
    plain = audit(tiny, tmp_path / "plain", defenses=("none",))
    assert not plain.transform.is_fixed and "does not cover" in plain.ctx.normalisation
    assert "transform" not in json.loads((tmp_path / "plain" / "training_config.json").read_text())
    assert audit(tiny, tmp_path / "forced", defenses=("none",), transform="fixed").transform.is_fixed
    fitted = audit(tiny, tmp_path / "fitted", defenses=("dpsgd:eps=8",), transform="fitted")
    assert not fitted.transform.is_fixed and "does not cover" in fitted.ctx.normalisation


def test_a_folder_of_fitted_runs_is_not_reused_under_the_fixed_normalisation(tiny, tmp_path):  # noqa: F811
    audit(tiny, tmp_path / "a", defenses=("none",))
    with pytest.raises(UserError, match=r"other settings \(transform differ\)"):
        audit(tiny, tmp_path / "a", defenses=("none",), transform="fixed")
    with pytest.raises(UserError, match="transform 'whiten' unknown"):
        tiny_config(tiny, transform="whiten")
