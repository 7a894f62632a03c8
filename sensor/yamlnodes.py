"""Shared by the YAML readers that name file and line (daemon config, scenarios)."""

from __future__ import annotations

from yaml.nodes import Node


class NodeError(Exception):
    """One bad value; the reader that catches it adds the file and the node's line."""

    def __init__(self, message: str, node: Node) -> None:
        super().__init__(message)
        self.node = node
