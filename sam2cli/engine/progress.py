"""Progress of long runs on stderr, and what an interrupted run does with its finished work.

* :func:`progress_bar`: a rich bar in a terminal; when stderr is a pipe or a log file (where rich
  draws nothing) a plain line ``<task> <done>/<total> <rate>`` at most every ``PLAIN_EVERY_S``
  seconds instead, so a slow run is never silent.
* :func:`rated_progress`: that bar with the rate line every command shows: the yielded
  ``advance(n=1, note="")`` moves it and sets ``<note> <seconds per item>``.
* :func:`rate_text`: the speed as seconds per item, ``3.41 s/frame`` (the unit a slow model is
  judged by).
* :func:`interrupts_as_keyboard`: SIGTERM (``timeout``, ``kill``) raises KeyboardInterrupt like
  Ctrl-C, so the caller can commit the outputs of the finished items instead of dying with only
  temp files on disk.
"""

import signal
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

PLAIN_EVERY_S = 10.0  # seconds between plain progress lines (pipes, log files)


def rate_text(done: int, elapsed: float, unit: str = "frame") -> str:
    """Seconds per item: '3.41 s/frame', '0.061 s/frame'; '' before the first item."""
    if done <= 0 or elapsed <= 0:
        return ""
    per = elapsed / done
    return f"{per:.2f} s/{unit}" if per >= 1.0 else f"{per:.3f} s/{unit}"


class _Progress(Progress):
    """rich Progress that also prints plain lines when the console is not a terminal."""

    def __init__(self, *columns: Any, console: Console, **kwargs: Any):
        super().__init__(*columns, console=console, **kwargs)
        self._plain = not console.is_terminal
        self._last_line = time.monotonic()

    def update(self, task_id: TaskID, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(task_id, **kwargs)
        if not self._plain or time.monotonic() - self._last_line < PLAIN_EVERY_S:
            return
        self._last_line = time.monotonic()
        task = next(t for t in self.tasks if t.id == task_id)
        total = f"/{task.total:.0f}" if task.total is not None else ""
        rate = task.fields.get("rate", "")
        self.console.print(f"{task.description} {task.completed:.0f}{total}{' ' + rate if rate else ''}",
                           highlight=False, markup=False)


def progress_bar(console: Console, disable: bool = False) -> Progress:
    """A transient bar with a ``rate`` field: ``bar.add_task(name, total=n, rate="")``;
    ``disable`` shows nothing (a DDP rank other than 0)."""
    bar = _Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=console, transient=True,
                    disable=disable)
    bar._plain = bar._plain and not disable
    return bar


@contextmanager
def rated_progress(console: Console, name: str, total: Optional[int], unit: str, *, disable: bool = False,
                   count: Optional[Callable[[], int]] = None, t0: Optional[float] = None) -> Iterator[Callable]:
    """A progress bar whose rate field is the one rate line: the yielded ``advance(n=1, note="",
    description=None)`` moves the bar by n and shows ``<note> <rate_text>``. ``count()`` gives the
    items done for the rate (default: the steps advanced), ``t0`` when the clock started (default: now)."""
    start = time.perf_counter() if t0 is None else t0
    steps = [0]
    with progress_bar(console, disable=disable) as bar:
        task = bar.add_task(name, total=total, rate="")

        def advance(n: int = 1, note: str = "", description: Optional[str] = None) -> None:
            steps[0] += n
            done = count() if count is not None else steps[0]
            rate = rate_text(done, time.perf_counter() - start, unit)
            extra = {} if description is None else {"description": description}
            bar.update(task, advance=n, rate=f"{note} {rate}".strip(), **extra)
        yield advance


@contextmanager
def interrupts_as_keyboard() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: Optional[Any]) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
