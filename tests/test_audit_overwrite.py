"""Nothing lost without a word: an audit that would drop defenses from a folder's results refuses first."""
import dataclasses

import pytest

from mi_defense.auditing import Audit, run_audit
from mi_defense.errors import UserError
from tests.test_audit import blind_defense, tiny, tiny_config  # noqa: F401  (fixtures)


def test_auditing_a_folder_again_with_fewer_defenses_refuses_before_training(tiny, tmp_path):  # noqa: F811
    cfg = tiny_config(tiny, defenses=("none", "blind"), references=0, attacks=("threshold_loss",))
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=30))
    run_audit(cfg, tmp_path / "a", progress=False, log=lambda s: None)
    with pytest.raises(UserError, match=r"reports blind, which this audit does not list.*new --out folder"):
        Audit(dataclasses.replace(cfg, defenses=("none",)), tmp_path / "a", progress=False, log=lambda s: None)
    res = run_audit(dataclasses.replace(cfg, defenses=("blind", "none")), tmp_path / "a", progress=False,
                    log=lambda s: None)
    # the same list in any order is scored again
    assert res["timings"]["runs"]["trained"] == 0 and len(res["defenses"]) == 2
