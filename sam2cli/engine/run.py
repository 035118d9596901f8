"""The skeleton `sam2 predict` and `sam2 track` share: a run directory, the writers, a progress
bar, what Ctrl-C (or SIGTERM) keeps, and the summary line.

    run = Run("predict", opts.run_dir, opts.outputs, console, unit="image")
    with run.guard(), run.progress(total) as advance:
        for ...:
            run.outputs.write(r)
            run.count(len(r))
            advance()
    run.summary(f"{run.done} image(s), ...")

Inside `guard()`, a failure removes every output; an interruption keeps the finished items
(and says where they are) when there are any; a clean exit commits them.
"""

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from rich.console import Console
from rich.markup import escape

from sam2cli.io.run_dir import increment_dir
from .options import OutputOptions, RunDirOptions
from .outputs import RunOutputs
from .progress import interrupts_as_keyboard, rate_text, rated_progress


def open_run_dir(where: RunDirOptions, command: str) -> Path:
    """The one run folder rule: project/name (name defaults to the command), then name2, name3,
    ... unless exist_ok reuses it."""
    return increment_dir(where.project, where.name or command, where.exist_ok)


class Run:
    def __init__(self, command: str, where: RunDirOptions, outputs: OutputOptions, console: Console, *,
                 unit: str = "frame"):
        self.command, self.console, self.unit = command, console, unit
        self.dir = open_run_dir(where, command) if outputs.saves_files else None
        self.outputs = RunOutputs(self.dir, outputs)
        self.done = 0      # items finished (images or frames)
        self.masks = 0
        self.t0 = time.perf_counter()

    def count(self, masks: int, items: int = 1) -> None:
        self.done += items
        self.masks += masks

    def rate(self) -> str:
        return rate_text(self.done, time.perf_counter() - self.t0, self.unit)

    @contextmanager
    def progress(self, total: Optional[int], steps: Optional[Callable[[], int]] = None) -> Iterator[Callable]:
        """A bar named after the command; the yielded function advances it by one step. `steps`
        counts the steps done for the rate (default: the items counted so far)."""
        with rated_progress(self.console, self.command, total, self.unit, count=steps or (lambda: self.done),
                            t0=self.t0) as advance:
            yield advance

    @contextmanager
    def guard(self, noun: Optional[str] = None) -> Iterator[None]:
        """Commit the outputs on success; on an interruption keep the finished ones (if any) and
        say so; remove them on any other failure."""
        try:
            with interrupts_as_keyboard():
                yield
        except KeyboardInterrupt:
            self.outputs.close() if self.done else self.outputs.abort()
            where = f"; the finished ones are saved in {escape(str(self.dir))}" if self.dir and self.done else ""
            self.console.print(f"interrupted after {self.done} {noun or self.unit}(s){where}", highlight=False)
            raise
        except BaseException:
            self.outputs.abort()
            raise
        self.outputs.close()

    def summary(self, text: str) -> None:
        """The closing line, with where the files went."""
        where = f", saved to {self.dir}" if self.dir else ""
        self.console.print(f"{text}{where}")
