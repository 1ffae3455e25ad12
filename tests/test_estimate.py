"""The one-line time estimate long jobs print (``mi_defense.progress.Estimate``) and the plain
progress lines written when the output is a log file."""
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
    assert ("about 3 min left for 89 steps" in text and "2.00 s per step" in text
            and text.endswith("--steps 50 halves it"))


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


# ----------------------------------------------------------------- an audit's planned work
def _ctx():
    from mi_defense.config import DistillConfig, TrainConfig
    from mi_defense.defenses import DefenseContext

    return DefenseContext(10, (28, 28, 1), TrainConfig(width=32, depth=3, batch=128, steps=1000),
                          distill=DistillConfig(steps=300, width=32, depth=3, batch_real=128))


def test_each_defense_plans_its_work_by_kind():
    from mi_defense.config import DefenseSpec
    from mi_defense.defenses import make_defense

    ctx = _ctx()
    plan = {s: make_defense(DefenseSpec.parse(s), ctx).planned(1000)
            for s in ("none", "subset:n=100", "frepo:ipc=10", "frepo:ipc=10,eps=8", "dpsgd-linear:eps=8")}
    (none,) = plan["none"]
    # 100 epochs of 1000 at 128
    assert (none.name, none.kind, none.steps) == ("train", "training steps at batch 128", 782)
    assert [(p.kind, p.steps) for p in plan["subset:n=100"]] == [("training steps at batch 100", 1000)]
    distil, train = plan["frepo:ipc=10"]  # a FRePo run is a distillation plus a training on its 100 images
    assert (distil.name, distil.steps, train.kind, train.steps) == ("distill", 300, "training steps at batch 100", 1000)
    assert (plan["frepo:ipc=10,eps=8"][0].kind.startswith("DP distillation")
            and plan["frepo:ipc=10,eps=8"][0].kind != distil.kind)
    (dp,) = plan["dpsgd-linear:eps=8"]
    assert (dp.name, dp.steps) == ("dpsgd", 60) and "expected batch 1000" in dp.kind  # 60 epochs at batch 1000


def test_time_left_is_priced_from_planned_work_not_from_the_runs_so_far():
    from mi_defense.auditing.plan import RunId
    from mi_defense.auditing.workplan import WorkClock
    from mi_defense.config import DefenseSpec
    from mi_defense.progress import Phase

    train = Phase("train", "training steps at batch 128", 1000)
    distil = Phase("distill", "distillation steps", 300)
    none, frepo = DefenseSpec.parse("none"), DefenseSpec.parse("frepo:ipc=10")
    todo = [(none, RunId("ref", i)) for i in range(2)] + [(frepo, RunId("ref", i)) for i in range(2)]
    phases = [(train,)] * 2 + [(distil, train)] * 2
    clock = WorkClock()
    # a finished undefended run: 100 s of training (0.1 s per step) and 20 s of queries
    clock.observe("none", (train,), {"seconds": 100.0, "wall_seconds": 120.0})
    seconds, untimed = clock.seconds_left(todo, phases)
    # FRePo's training is priced already; its distillation is named as not timed yet
    assert seconds == 4 * 20.0 + 4 * 100.0 and untimed == ["distillation steps"]
    assert (clock.text(todo, phases).startswith("at least 8 min left for 4 run(s)")
            and "not timed yet: distillation steps" in clock.text(todo, phases))
    # a FRePo run: 90 s distilling (0.3 s per step), 100 s training; the rest is priced by kind, not by the mean run
    clock.observe("frepo_ipc=10", (distil, train), {"seconds": 190.0, "distill_seconds": 90.0, "wall_seconds": 210.0})
    seconds, untimed = clock.seconds_left(todo[3:], phases[3:])
    assert untimed == [] and seconds == 20.0 + 300 * 0.3 + 1000 * 0.1
    assert clock.text(todo[3:], phases[3:]) == "about 4 min left for 1 run(s), from their planned work"  # 210 s
    # twice the planned steps, twice the time: runs of a longer kind are not priced at the mean of the short ones
    longer = (Phase("train", "training steps at batch 128", 2000),)
    assert clock.seconds_left([todo[0]], [longer])[0] == 20.0 + 200.0


def test_a_defense_that_states_no_work_is_timed_whole():
    from mi_defense.auditing.plan import RunId
    from mi_defense.auditing.workplan import WorkClock, describe
    from mi_defense.config import DefenseSpec

    spec = DefenseSpec.parse("none")
    clock = WorkClock()
    todo = [(spec, RunId("ref", 0))]
    assert clock.seconds_left(todo, [()]) == (0.0, ["none"])
    clock.observe("none", (), {"seconds": 50.0, "wall_seconds": 60.0})
    assert clock.seconds_left(todo, [()]) == (60.0, [])
    assert describe(todo * 2, [()] * 2) == "planned work: none: 2 run(s) of work not stated"


def test_progress_in_a_log_file_is_plain_periodic_lines():
    import io

    from mi_defense.progress import PlainProgress, progress

    assert isinstance(progress(range(3), desc="x"), PlainProgress)  # pytest's stderr is not a terminal
    buf = io.StringIO()
    bar = PlainProgress(range(1000), desc="train", unit="step", every=3600, stream=buf)
    assert sum(1 for _ in bar) == 1000
    assert buf.getvalue() == ""  # short work says nothing
    buf = io.StringIO()
    for _ in PlainProgress(range(5), desc="d", unit="step", every=0.0, stream=buf):
        pass
    lines = buf.getvalue().splitlines()
    assert len(lines) == 6 and "\r" not in buf.getvalue()  # one per update when due, plus the closing line
    assert lines[0].startswith("d: 1/5 step in ") and lines[-1].startswith("d: 5/5 step in ")
