"""The one-line time estimate long jobs print (``mi_defense.progress.Estimate``)."""
from mi_defense.progress import Estimate, duration_text


def _run(total, costs, **kw):
    t = [0.0]
    e = Estimate(total, clock=lambda: t[0], **kw)
    lines = []
    for done, cost in enumerate(costs, start=1):
        t[0] += cost
        said = e.update(done)
        if said:
            lines.append((done, said))
    return lines


def test_the_warm_up_is_not_timed_and_the_line_comes_once():
    # a slow first step (tracing), then 2 s per step: 100 - 11 steps left at 2 s
    lines = _run(100, [60.0] + [2.0] * 60, what="FRePo", knob="--steps 50 halves it")
    assert len(lines) == 1
    done, text = lines[0]
    assert done == 11
    assert "about 3 min left for 89 steps" in text and "2.00 s per step" in text and text.endswith("--steps 50 halves it")


def test_a_job_too_short_to_time_says_nothing():
    assert _run(8, [1.0] * 8) == []


def test_resumed_jobs_count_from_where_they_start():
    t = [0.0]
    e = Estimate(50, done=30, clock=lambda: t[0], warmup=2, window=4)
    said = None
    for done in range(31, 51):
        t[0] += 3.0
        said = said or e.update(done)
    assert said is not None and "left for 14 steps" in said and "3.00 s per step" in said


def test_durations_read_naturally():
    assert duration_text(40) == "40 s" and duration_text(720) == "12 min" and duration_text(9000) == "2.5 h"
