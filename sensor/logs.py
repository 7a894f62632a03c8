"""Logging to stderr, one line per record, in a form the systemd journal understands.

Under systemd (stderr connected to the journal, as $JOURNAL_STREAM says) each
line starts with an sd-daemon priority prefix such as `<4>`, so that
`journalctl -p warning` filters properly; elsewhere lines read
`minewatch: LEVEL: message`. A record that would span lines (a traceback, a
list of rule problems) is folded into one, so that neither the journal nor a
log shipper splits it into unrelated entries.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

# sd-daemon(3) priorities, as syslog's
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
DEBUG_PRIORITY = 7
FOLD = " | "
HANDLER_NAME = "minewatch"


def priority(level: int) -> int:
    """The syslog priority of a logging level (custom levels fall to the one below)."""
    for floor, prio in PRIORITIES:
        if level >= floor:
            return prio
    return DEBUG_PRIORITY


class _Formatter(logging.Formatter):
    def __init__(self, journal: bool) -> None:
        super().__init__("%(message)s" if journal else "minewatch: %(levelname)s: %(message)s")
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record).rstrip("\n").replace("\n", FOLD)
        return f"<{priority(record.levelno)}>{text}" if self.journal else text


def to_journal(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """Whether `stream` is the journal stream systemd set up ($JOURNAL_STREAM is
    "device:inode" of it); a stream redirected elsewhere gets plain lines."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, sep, inode = value.partition(":")
    if not sep or not device.isdigit() or not inode.isdigit():
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False  # no file descriptor (a test's capture buffer, say)
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def setup(level: str | int = "warning", stream: TextIO | None = None) -> logging.Handler:
    """Send log records at `level` or above to `stream` (default stderr).

    Replaces the handler an earlier call installed (main() may run more than
    once in a process, as in tests), and leaves other handlers alone.
    """
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_Formatter(to_journal(stream)))
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
