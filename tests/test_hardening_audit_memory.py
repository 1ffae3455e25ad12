"""An audit whose distillation cannot fit in memory is refused before anything is trained or written."""
import pytest

from mi_defense.errors import UserError


def test_audit_refuses_a_distillation_that_cannot_fit_before_writing(tmp_path, monkeypatch):
    from mi_defense.auditing import AuditConfig, run_audit
    from mi_defense.distillation import memory

    monkeypatch.setattr(memory, "machine_memory", lambda: 64 << 20)  # a 64 MiB machine
    cfg = AuditConfig(dataset="digits", members=200, nonmembers=200, references=0, bootstrap=0, n_jobs=1,
                      defenses=("none", "frepo:ipc=150"), attacks=("threshold_loss",))
    with pytest.raises(UserError, match=r"ipc=150\) needs at least .* GiB .* use --ipc \d+ or less"):
        run_audit(cfg, tmp_path / "a", progress=False, log=lambda s: None)
    assert not (tmp_path / "a").exists()
