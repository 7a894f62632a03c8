"""The metrics web endpoint: a landing page at `/`, the exposition at `/metrics`.

A threaded stdlib HTTP server in a daemon thread, configured by an
exporter-toolkit web config (`webconfig.WebConfig`): TLS through the ssl
module, basic auth against bcrypt hashes, response headers, a rate limit.
`/metrics` speaks what the scraper asks for (text or OpenMetrics, gzip or
not) through client_python's own helpers, and `name[]` selects families.

The default address is loopback, port 10090: outside the 9100-9999 range the
Prometheus exporter port registry has handed out, and never exposed to the
network unless the operator says so.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import gzip
import hashlib
import hmac
import html
import ipaddress
import logging
import os
import socket
import socketserver
import ssl
import threading
import time
import weakref
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import bcrypt
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import CollectorRegistry

from sensor import __version__
from sensor.sinks.webconfig import RateLimit, WebConfig

log = logging.getLogger(__name__)

DEFAULT_LISTEN_ADDRESS = "127.0.0.1:10090"
MAX_CACHED_LOGINS = 1024
_LANDING = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>minewatch exporter</title></head>
<body><h1>minewatch exporter</h1>
<p>Finds cryptocurrency mining in network traffic. Version {version}.</p>
<ul><li><a href="metrics">Metrics</a></li></ul>
</body></html>
"""


def parse_listen_address(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPV6]:PORT, or :PORT (every interface) -> (host, port). Raises ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"bad listen address {text!r} (expected HOST:PORT, e.g. 127.0.0.1:10090)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"bad listen address {text!r}: put IPv6 addresses in brackets")
    return host, int(port)


class _Logins:
    """Basic auth against bcrypt hashes, with successful logins cached.

    bcrypt is slow on purpose (about 70 ms at cost 10); without the cache every
    scrape would pay it. The cache holds keyed digests of the credentials, not
    the passwords. An unknown user is checked against a dummy hash of the same
    cost, so that the time taken does not tell which users exist.
    """

    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = users
        self._key = os.urandom(32)
        self._cached: dict[bytes, bytes] = {}
        self._dummy: bytes | None = None

    def allow(self, header: str | None) -> bool:
        if not self.users:
            return True
        credentials = _basic_credentials(header)
        if credentials is None:
            return False
        user, password = credentials
        hashed = self.users.get(user)
        digest = hmac.new(self._key, user.encode() + b"\0" + password, hashlib.sha256).digest()
        if hashed is not None and self._cached.get(digest) == hashed:
            return True
        # bcrypt reads at most 72 bytes of a password; so did whatever made the hash.
        matched = bcrypt.checkpw(password[:72], hashed or self._dummy_hash())
        if matched and hashed is not None:
            if len(self._cached) >= MAX_CACHED_LOGINS:
                self._cached.clear()
            self._cached[digest] = hashed
        return matched and hashed is not None

    def _dummy_hash(self) -> bytes:
        if self._dummy is None:
            cost = max(int(h[4:6]) for h in self.users.values())
            self._dummy = bcrypt.hashpw(os.urandom(16), bcrypt.gensalt(cost))
        return self._dummy


def _basic_credentials(header: str | None) -> tuple[str, bytes] | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(token.strip(), validate=True)
        user, sep, password = raw.partition(b":")
        return (user.decode("utf-8"), password) if sep else None
    except (binascii.Error, UnicodeDecodeError):
        return None


class _TokenBucket:
    """exporter-toolkit's rate_limit: `burst` requests at once, then one per `interval`."""

    def __init__(self, limit: RateLimit) -> None:
        self.rate, self.burst = 1.0 / limit.interval, float(limit.burst)
        self._tokens, self._stamp = self.burst, time.monotonic()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], registry: CollectorRegistry, config: WebConfig):
        host, port = address
        family, host = _family(host, port)
        self.address_family = family
        self.registry, self.config = registry, config
        self.logins = _Logins(dict(config.users))
        self.limiter = _TokenBucket(config.rate_limit) if config.rate_limit else None
        self.connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6 and self.server_address[0] == "::":
            # ":PORT" means every interface, IPv4 included, as Go exporters listen.
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # Not HTTPServer.server_bind: its reverse DNS lookup of the host can stall start-up.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def get_request(self) -> tuple[Any, Any]:
        conn, addr = super().get_request()
        if self.config.tls is not None:
            # The handshake waits for the request's own thread: a client that
            # connects and stalls must not hold up the accept loop.
            conn = self.config.tls.wrap_socket(
                conn, server_side=True, do_handshake_on_connect=False
            )
        with self._conn_lock:
            self.connections.add(conn)
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections, so their threads finish now, not at their timeout."""
        with self._conn_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):  # already gone
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that fails the TLS handshake or hangs up is routine, not a traceback.
        log.debug("web: request from %s failed", client_address, exc_info=True)


def _family(host: str, port: int) -> tuple[socket.AddressFamily, str]:
    if host == "":
        return (socket.AF_INET6, "::") if socket.has_ipv6 else (socket.AF_INET, "0.0.0.0")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, *_, sockaddr = infos[0]
    return family, str(sockaddr[0])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Prometheus scrapes
    server_version = f"minewatch/{__version__}"
    timeout = 30  # seconds a connection may sit idle or mid-request

    @property
    def _srv(self) -> _Server:
        return cast(_Server, self.server)

    def setup(self) -> None:
        conn = self.request
        if isinstance(conn, ssl.SSLSocket):
            conn.settimeout(self.timeout)
            conn.do_handshake()
            _check_sans(conn, self._srv.config.allowed_sans)
        super().setup()

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        srv = self._srv
        if srv.limiter is not None and not srv.limiter.allow():
            self._send(429, b"Too Many Requests\n", head=head)
        elif not srv.logins.allow(self.headers.get("Authorization")):
            challenge = [("WWW-Authenticate", 'Basic realm="minewatch"')]
            self._send(401, b"Unauthorized\n", challenge, head)
        else:
            self._route(urlsplit(self.path), head)

    def _route(self, url: Any, head: bool) -> None:
        if url.path == "/":
            page = _LANDING.format(version=html.escape(__version__)).encode()
            self._send(200, page, [("Content-Type", "text/html; charset=utf-8")], head)
        elif url.path == "/metrics":
            self._metrics(parse_qs(url.query), head)
        else:
            self._send(404, b"Not Found\n", head=head)

    def _metrics(self, params: dict[str, list[str]], head: bool) -> None:
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        registry: Any = self._srv.registry
        if "name[]" in params:
            registry = registry.restricted_registry(params["name[]"])
        try:
            body = encoder(registry)
        except Exception:
            log.exception("web: collecting metrics failed")
            self._send(500, b"collecting metrics failed; see the sensor's log\n", head=head)
            return
        headers = [("Content-Type", content_type), ("Vary", "Accept-Encoding")]
        if gzip_accepted(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body)
            headers.append(("Content-Encoding", "gzip"))
        self._send(200, body, headers, head)

    def _send(
        self,
        status: int,
        body: bytes,
        headers: list[tuple[str, str]] | None = None,
        head: bool = False,
    ) -> None:
        self.send_response(status)
        for name, value in (*self._srv.config.headers, *(headers or ())):
            self.send_header(name, value)
        if not headers or all(name != "Content-Type" for name, _ in headers):
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("web: %s " + format, self.address_string(), *args)


def _check_sans(conn: ssl.SSLSocket, allowed: frozenset[str]) -> None:
    """exporter-toolkit's client_allowed_sans: some SAN of the client's certificate must match."""
    if not allowed:
        return
    cert: Any = conn.getpeercert() or {}
    names = [str(value) for _, value in cert.get("subjectAltName", ())]
    if not any(_same_name(name, want) for name in names for want in allowed):
        raise ConnectionError(f"client certificate SANs {names} not in client_allowed_sans")


def _same_name(name: str, want: str) -> bool:
    if name == want:
        return True
    try:  # the ssl module writes IPv6 SANs in full, upper case
        return ipaddress.ip_address(name.strip()) == ipaddress.ip_address(want)
    except ValueError:
        return False


def _close_in_child(server: weakref.ref[MetricsServer]) -> None:
    """A forked capture worker must not hold the listening socket: the port would
    stay taken (and the worker reachable) after the daemon itself is gone."""
    alive = server()
    if alive is not None:
        alive._server.socket.close()


class MetricsServer:
    """Serves `/` and `/metrics` from `registry` in a daemon thread, from start() to stop().

    Binds when built, so that a taken port fails before any work starts.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        address: tuple[str, int] = ("127.0.0.1", 10090),
        config: WebConfig | None = None,
    ) -> None:
        self.config = config or WebConfig()
        try:
            self._server = _Server(address, registry, self.config)
        except OSError as exc:
            host, port = address
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=functools.partial(_close_in_child, weakref.ref(self)))

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        scheme = "https" if self.config.tls is not None else "http"
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}/"

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="minewatch-web",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
