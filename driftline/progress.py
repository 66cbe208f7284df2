"""Progress bars for long commands (`driftline eval`, `driftline migrate`, `score backfill`): tqdm.

A bar is for a person at a terminal: it goes to stderr, so stdout stays the command's result (a
table, a summary line) for pipes and scripts, and it stays quiet when stderr is not a TTY (CI logs,
a service's journal, a redirect), which tqdm does itself with `disable=None`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm import tqdm

__all__ = ["StepFn", "bar", "steps"]

T = TypeVar("T")

# (done, total, what is running now): how a long operation reports progress without knowing of bars.
StepFn = Callable[[int, int, str], None]


def bar(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """`items`, iterated behind a progress bar on stderr (none when stderr is not a TTY)."""
    yield from tqdm(items, desc=desc, total=total, unit=unit, file=sys.stderr, disable=None, leave=False)


@contextmanager
def steps(desc: str, unit: str = "step") -> Iterator[StepFn]:
    """A bar driven by a `StepFn` callback, for operations that count their own steps."""
    with tqdm(desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False) as b:

        def step(done: int, total: int, now: str) -> None:
            b.set_postfix_str(now, refresh=False)
            if b.total != total:
                b.reset(total=total)  # draws the bar: with `now` already in it
            b.update(done - b.n)

        yield step
