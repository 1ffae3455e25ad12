"""Progress on long work: a tqdm bar in a terminal, plain periodic lines in a log file.

A redirected tqdm bar writes a carriage-return update many times a second; in a log file
that becomes hundreds of kilobytes of control characters. When stderr is not a terminal,
``progress`` prints one plain line at most every ``every`` seconds (and a closing line
when it printed any) with the count, rate and remaining time instead.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Iterable, Optional


class PlainProgress:
    """The part of tqdm's interface the package uses, as periodic plain lines on stderr."""

    def __init__(self, iterable: Optional[Iterable] = None, total: Optional[float] = None, desc: str = "",
                 unit: str = "it", initial: float = 0, every: float = 30.0, stream=None, **_ignored):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc, self.unit, self.n, self.start_n = desc, unit, initial, initial
        self.every, self.stream = every, stream or sys.stderr
        self.t0 = self.last = time.monotonic()
        self.postfix = ""
        self.reported = False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix(self, **kw) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self.reported = True
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = now - self.t0
        rate = (self.n - self.start_n) / elapsed if elapsed > 0 else 0.0
        left = ""
        if self.total and rate > 0:
            left = f", about {(self.total - self.n) / rate:.0f} s left"
        of = f"/{self.total:g}" if self.total else ""
        extra = f" ({self.postfix})" if self.postfix else ""
        print(f"{self.desc}: {self.n:g}{of} {self.unit} in {elapsed:.0f} s{left}{extra}", file=self.stream, flush=True)

    def close(self) -> None:
        """A closing line for work long enough to have reported before; short work stays silent."""
        if self.last is not None and self.reported:
            self._line(time.monotonic())
        self.last = None


def progress(iterable=None, *, disable: bool = False, **kw):
    """A tqdm bar when stderr is a terminal, else ``PlainProgress``; nothing when ``disable``."""
    from tqdm.auto import tqdm

    if disable or sys.stderr.isatty():
        return tqdm(iterable, disable=disable, **kw)
    return PlainProgress(iterable, **kw)


def duration_text(seconds: float) -> str:
    """``"40 s"``, ``"12 min"`` or ``"2.5 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Estimate:
    """The time a long job will take, said once, from the rate of its first units after a warm-up.

    The first ``warmup`` units (graph tracing, caches filling) are not timed; once ``window``
    more units are done, ``update`` returns one line with the time left and the knob that cuts
    it (``knob``, e.g. ``"--steps 500 halves it"``), then ``None`` ever after. ``clock`` is
    injectable for tests."""

    def __init__(self, total: int, done: int = 0, what: str = "", unit: str = "step", knob: str = "", warmup: int = 1,
                 window: int = 10, clock=time.monotonic):
        self.total, self.start, self.what, self.unit, self.knob = total, done, what, unit, knob
        self.warmup, self.window, self.clock = warmup, window, clock
        self.ref: Optional[tuple] = None
        self.said = total - done <= warmup + window  # too short a job to be worth a line

    def update(self, done: int) -> Optional[str]:
        if self.said:
            return None
        now = self.clock()
        if self.ref is None:
            if done - self.start >= self.warmup:
                self.ref = (done, now)
            return None
        n0, t0 = self.ref
        if done - n0 < self.window:
            return None
        self.said = True
        per = (now - t0) / (done - n0)
        left = self.total - done
        knob = f"; {self.knob}" if self.knob else ""
        return (f"{self.what}: about {duration_text(per * left)} left for {left} {self.unit}s "
                f"({per:.2f} s per {self.unit} on this machine){knob}")


@dataclass(frozen=True)
class Phase:
    """``steps`` steps of one kind of work: ``name`` the phase ("train", "distill", "dpsgd"; a
    run records ``<name>_seconds`` when it has more than one phase), ``kind`` what shares a
    per-step cost (e.g. "training steps at batch 128")."""

    name: str
    kind: str
    steps: int
