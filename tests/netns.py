"""Network namespaces and veth pairs for tests that need real interfaces.

    with netns.veth_pair() as (ns, capture_end, send_end):
        with netns.entered(ns):
            sock = socket.socket(...)  # created inside the namespace, usable outside

Everything is made inside a fresh namespace and removed on exit, whatever
happens; IPv6 is switched off there and no addresses are assigned, so the
kernel itself sends nothing and no traffic can leave. Needs root and `ip`
(iproute2); `skip_reason()` says why not, for `pytest.mark.skipif`.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path

NETNS_DIR = Path("/var/run/netns")
CLONE_NEWNET = 0x40000000
_names = itertools.count()


@cache
def skip_reason() -> str | None:
    """Why namespace tests cannot run here, or None (asked once: it makes a namespace)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    try:  # root in a container may still lack CAP_SYS_ADMIN
        with namespace("mwprobe"):
            return None
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot create a network namespace: {exc}"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def exec_in(ns: str, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command inside the namespace (`ip netns exec`), output captured as text."""
    options: dict[str, object] = {"capture_output": True, "text": True, "timeout": 60}
    options.update(kwargs)
    return subprocess.run(["ip", "netns", "exec", ns, *argv], **options)  # type: ignore[call-overload]


def exists(ns: str) -> bool:
    return (NETNS_DIR / ns).exists()


@contextmanager
def namespace(prefix: str = "mwt") -> Iterator[str]:
    """A fresh, quiet network namespace with a unique name, deleted on exit."""
    name = f"{prefix}{os.getpid()}-{next(_names)}"
    _ip("netns", "add", name)
    try:
        # No IPv6 means no router solicitations or MLD reports on the links.
        exec_in(name, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"], check=True)
        exec_in(name, ["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"], check=True)
        yield name
    finally:
        # Deleting the namespace destroys its interfaces with it.
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


@contextmanager
def veth_pair(a: str = "mw0", b: str = "mw1") -> Iterator[tuple[str, str, str]]:
    """(namespace, a, b): a veth pair, both ends up, in a fresh namespace."""
    with namespace() as ns:
        add_veth(ns, a, b)
        yield ns, a, b


@contextmanager
def linked_namespaces(a: str = "mw0", b: str = "mw1") -> Iterator[tuple[str, str, str, str]]:
    """(namespace of a, a, namespace of b, b): two fresh namespaces joined by a veth pair,
    as a sensor and the network it watches."""
    with namespace() as ns_a, namespace() as ns_b:
        _ip("link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b)
        _ip("-n", ns_a, "link", "set", a, "up")
        _ip("-n", ns_b, "link", "set", b, "up")
        yield ns_a, a, ns_b, b


def add_veth(ns: str, a: str, b: str) -> None:
    """Another veth pair, both ends up, in an existing namespace (gone with it)."""
    _ip("-n", ns, "link", "add", a, "type", "veth", "peer", "name", b)
    _ip("-n", ns, "link", "set", a, "up")
    _ip("-n", ns, "link", "set", b, "up")


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def entered(ns: str) -> Iterator[None]:
    """Run the block with this thread inside the namespace (setns(2)).

    Sockets created in the block stay in the namespace after it; the thread
    goes back to its own namespace whatever happens.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / ns, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)
