"""Write output files atomically: to a temp file in the same folder, then rename.

A crash, Ctrl-C or exception halfway through a write never leaves a truncated file
behind: either the old file (or nothing) is there, or the complete new one.

The temp file lives next to the destination (so :func:`os.replace` never crosses a
filesystem) and keeps the destination's suffix at the end of its name, e.g.
``out/frame.png`` is written as ``out/.frame.tmp1a2b3c4d.png``, so encoders that pick
the format from the extension (PIL, OpenCV, PyAV) still work.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Iterator, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

_MAX_STEM = 180  # keep temp names well under the usual 255-byte file name limit


class AtomicTarget:
    """A reserved temp path for ``dest``; :meth:`commit` renames it onto ``dest``, :meth:`discard` deletes it.

    The temp file is created empty (with the usual umask permissions) to reserve the
    name; writers may overwrite or truncate it freely. Missing parent folders of
    ``dest`` are created.
    """

    def __init__(self, dest: PathLike) -> None:
        self.dest = Path(dest)
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        stem = self.dest.stem[:_MAX_STEM]
        while True:
            tmp = self.dest.with_name(f".{stem}.tmp{secrets.token_hex(4)}{self.dest.suffix}")
            try:
                fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                continue
            os.close(fd)
            break
        self.tmp = tmp
        self.done = False

    def commit(self) -> Path:
        """Move the temp file onto the destination (replacing it) and return the destination."""
        if not self.done:
            self.done = True
            os.replace(self.tmp, self.dest)
        return self.dest

    def discard(self) -> None:
        """Delete the temp file; the destination is left untouched."""
        if not self.done:
            self.done = True
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass


@contextmanager
def atomic_path(dest: PathLike) -> Iterator[Path]:
    """Yield a temp path next to ``dest``; on success it replaces ``dest``, on any exception it is deleted.

    Example::

        with atomic_path("out/mask.png") as tmp:
            cv2.imwrite(str(tmp), mask)
    """
    target = AtomicTarget(dest)
    try:
        yield target.tmp
    except BaseException:
        target.discard()
        raise
    target.commit()


def write_bytes_atomic(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename); return the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def write_text_atomic(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; return the path."""
    return write_bytes_atomic(path, text.encode(encoding))


class _CommitOnExit:
    """Context manager for writers with close() (commit) and abort() (discard the temp file)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
