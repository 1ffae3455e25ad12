"""Learning-rate schedules: the cosine decay, and a linear warm-up then a cosine decay to a floor."""
import pytest

from mi_defense.config import TrainConfig
from mi_defense.errors import UserError
from mi_defense.training.schedules import cosine_lr


def test_cosine_schedule_ends_at_tenth():
    assert abs(float(cosine_lr(0, 100, 3e-4)) - 3e-4) < 1e-10
    assert abs(float(cosine_lr(100, 100, 3e-4)) - 3e-5) < 1e-10


def test_warmup_cosine_floor_matches_the_closed_form():
    """Linear warm-up, then ``lr (r + (1 - r) (1 + cos(pi t)) / 2)`` (optax's cosine decay with
    ``alpha = r``, as FRePo's evaluation code uses with r = 0.01); r = 0 decays to zero."""
    import math

    from mi_defense.training.schedules import WarmupCosine

    lr, warm, total = 3e-4, 500, 2000
    for r in (0.0, 0.01):
        sched = WarmupCosine(lr, warm, total, r)
        for step in (0, 250, 499, 500, 1000, 1500, 1999, 2000, 2500):
            t = min(max((step - warm) / (total - warm), 0.0), 1.0)
            want = lr * (step + 1) / warm if step < warm else lr * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * t)))
            assert float(sched(step)) == pytest.approx(want, rel=1e-5, abs=1e-5 * lr)  # float32
    assert float(WarmupCosine(lr, warm, total, 0.01)(total)) == pytest.approx(0.01 * lr, rel=1e-5)
    assert float(WarmupCosine(lr, warm, total)(total)) == 0.0
    assert TrainConfig().lr_final_ratio == 0.0 and TrainConfig(lr_final_ratio=0.01).lr_final_ratio == 0.01
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(UserError, match="lr_final_ratio"):
            TrainConfig(lr_final_ratio=bad)
