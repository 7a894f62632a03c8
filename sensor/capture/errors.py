"""The one error type of the capture stage: it always names its input."""

from __future__ import annotations


class CaptureError(Exception):
    """An input that could not be read (wholly or from some point on)."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message
