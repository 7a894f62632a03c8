"""A one-line progress display on stderr, only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


class Progress:
    """Shows which file of how many, and bytes done, at most a few times a second."""

    def __init__(self, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._last = 0.0

    def files(self, paths: list[Path], label: str) -> Iterator[Path]:
        total = sum(_size(p) for p in paths) or 1
        done = 0
        for index, path in enumerate(paths, 1):
            self._show(f"{label}: file {index}/{len(paths)} {path.name} ({100 * done // total}%)")
            yield path
            done += _size(path)
        self._show(f"{label}: done", final=True)

    def _show(self, text: str, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if final or now - self._last >= 0.2:
            self._last = now
            self.stream.write("\r\x1b[K" + text[:120] + ("\n" if final else ""))
            self.stream.flush()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
