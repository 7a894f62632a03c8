"""The metrics endpoint over real sockets on loopback: pages, formats, auth, TLS, shutdown.

Every test starts its own server on an ephemeral port of 127.0.0.1 and scrapes
it with the standard library's HTTP client (proxies from the environment
ignored). Certificates come from `make_pki` (test_webconfig.py).
"""

from __future__ import annotations

import base64
import gzip
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bcrypt
import pytest

from sensor.sinks.metrics import Exporter, Health
from sensor.sinks.web import DEFAULT_LISTEN_ADDRESS, MetricsServer, parse_listen_address
from sensor.sinks.webconfig import WebConfig, load_web_config
from tests.sinks.test_metrics import T, ended, mining
from tests.sinks.test_webconfig import Pki, make_pki

PASSWORD = "correct horse"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
Response = tuple[int, dict[str, str], bytes]


@pytest.fixture(scope="module")
def exporter() -> Exporter:
    exp = Exporter(health=lambda: Health(packets=10, bytes=1000, rules_loaded=3))
    rec = mining(1, "10.0.0.1", T, "btc")
    exp.state.mining(rec)
    exp.state.flow_end(ended(rec, T + 5, 1234, 99))
    return exp


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    made = make_pki(tmp_path_factory.mktemp("pki"))
    if made is None:
        pytest.skip("neither the cryptography package nor openssl is available")
    return made


@contextmanager
def serving(exporter: Exporter, config: WebConfig | None = None) -> Iterator[MetricsServer]:
    with MetricsServer(exporter.registry, ("127.0.0.1", 0), config) as server:
        yield server


def fetch(
    url: str, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None
) -> Response:
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def config_file(folder: Path, text: str) -> WebConfig:
    path = folder / "web.yml"
    path.write_text(text, encoding="utf-8")
    return load_web_config(path)


def test_landing_page_links_to_metrics(exporter):
    with serving(exporter) as server:
        status, headers, body = fetch(server.url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b'<a href="metrics">' in body and b"minewatch" in body


def test_metrics_in_the_text_format(exporter):
    with serving(exporter) as server:
        status, headers, body = fetch(server.url + "metrics")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    assert (
        'minewatch_pool_bytes_total{coin="btc",direction="egress",org_type="unknown"} 1234.0'
        in (text)
    )
    assert "minewatch_packets_total 10.0" in text
    assert "# TYPE minewatch_estimated_power_watts gauge" in text


def test_gzip_when_asked(exporter):
    with serving(exporter) as server:
        plain = fetch(server.url + "metrics")[2]
        status, headers, body = fetch(server.url + "metrics", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == plain


def test_openmetrics_when_asked(exporter):
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    with serving(exporter) as server:
        status, headers, body = fetch(server.url + "metrics", {"Accept": accept})
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    assert b"minewatch_mining_flows_total" in body


def test_name_filter_head_and_unknown_paths(exporter):
    with serving(exporter) as server:
        _, _, body = fetch(server.url + "metrics?name[]=minewatch_packets_total")
        conn = http.client.HTTPConnection(*server.address, timeout=5)
        conn.request("HEAD", "/metrics")
        head = conn.getresponse()
        head_body, head_length = head.read(), int(head.headers["Content-Length"])
        conn.close()
        missing = fetch(server.url + "nothing")
    assert body.decode().splitlines()[-1] == "minewatch_packets_total 10.0"
    assert b"minewatch_bytes_total" not in body
    assert head.status == 200 and head_body == b"" and head_length > 1000
    assert missing[0] == 404


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_finds_no_problems_in_a_scrape(exporter):
    with serving(exporter) as server:
        body = fetch(server.url + "metrics")[2]
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""


def test_basic_auth(exporter, tmp_path):
    config = config_file(tmp_path, f"basic_auth_users:\n  alice: {HASH}\n")
    with serving(exporter, config) as server:
        url = server.url + "metrics"
        none = fetch(url)
        wrong = fetch(url, basic("alice", "wrong"))
        stranger = fetch(url, basic("mallory", PASSWORD))
        garbage = fetch(url, {"Authorization": "Basic !!!"})
        bearer = fetch(url, {"Authorization": "Bearer abc"})
        right = fetch(url, basic("alice", PASSWORD))
        again = fetch(url, basic("alice", PASSWORD))  # from the cache
        landing = fetch(server.url)
    for status, headers, _ in (none, wrong, stranger, garbage, bearer, landing):
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Basic realm="minewatch"'
    assert right[0] == again[0] == 200 and b"minewatch_packets_total" in right[2]


def test_tls_with_a_generated_certificate(exporter, pki, tmp_path):
    config = config_file(
        tmp_path,
        f"tls_server_config:\n  cert_file: {pki.cert}\n  key_file: {pki.key}\n"
        f"basic_auth_users:\n  alice: {HASH}\n",
    )
    trust = ssl.create_default_context(cafile=str(pki.ca))
    with serving(exporter, config) as server:
        assert server.url.startswith("https://127.0.0.1:")
        ok = fetch(server.url + "metrics", basic("alice", PASSWORD), context=trust)
        refused = fetch(server.url + "metrics", context=trust)
        with pytest.raises((OSError, http.client.HTTPException)):
            fetch(server.url.replace("https", "http") + "metrics")  # plain HTTP to a TLS port
        with pytest.raises(urllib.error.URLError):
            fetch(server.url + "metrics", context=ssl.create_default_context())  # untrusted
        assert fetch(server.url, basic("alice", PASSWORD), context=trust)[0] == 200
    assert ok[0] == 200 and b"minewatch_pool_bytes_total" in ok[2]
    assert refused[0] == 401


def _client_context(pki: Pki, with_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if with_cert:
        assert pki.client_cert is not None and pki.client_key is not None
        ctx.load_cert_chain(pki.client_cert, pki.client_key)
    return ctx


@pytest.mark.parametrize("allowed", ["scraper.example", "other.example"])
def test_client_certificates_required_and_verified(exporter, pki, tmp_path, allowed):
    if pki.client_cert is None:
        pytest.skip("client certificates need the cryptography package")
    config = config_file(
        tmp_path,
        f"tls_server_config:\n  cert_file: {pki.cert}\n  key_file: {pki.key}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki.ca}\n"
        f"  client_allowed_sans: [{allowed}]\n",
    )
    with serving(exporter, config) as server:
        url = server.url + "metrics"
        with pytest.raises((OSError, http.client.HTTPException)):
            fetch(url, context=_client_context(pki, with_cert=False))
        if allowed == "scraper.example":
            assert fetch(url, context=_client_context(pki, with_cert=True))[0] == 200
        else:
            with pytest.raises((OSError, http.client.HTTPException)):
                fetch(url, context=_client_context(pki, with_cert=True))


def test_headers_and_rate_limit(exporter, tmp_path):
    config = config_file(
        tmp_path,
        "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
        "rate_limit:\n  interval: 1h\n  burst: 2\n",
    )
    with serving(exporter, config) as server:
        first, second, third = (fetch(server.url + "metrics") for _ in range(3))
    assert first[0] == second[0] == 200
    assert first[1]["X-Content-Type-Options"] == "nosniff"
    assert third[0] == 429


def test_stop_ends_kept_alive_connections_and_frees_the_port(exporter):
    server = MetricsServer(exporter.registry, ("127.0.0.1", 0)).start()
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=5)
    conn.request("GET", "/metrics")
    assert conn.getresponse().read()  # the connection stays open (HTTP/1.1 keep-alive)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    with pytest.raises((OSError, http.client.HTTPException)):  # the server hung up
        conn.request("GET", "/metrics")
        conn.getresponse()
    conn.close()
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1).close()


def test_a_taken_port_is_an_error_naming_the_address(exporter):
    with serving(exporter) as server:
        host, port = server.address
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            MetricsServer(exporter.registry, (host, port))


def test_ipv6_loopback(exporter):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = MetricsServer(exporter.registry, ("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with server:
        assert server.url.startswith("http://[::1]:")
        assert fetch(server.url + "metrics")[0] == 200


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:10090", ("127.0.0.1", 10090)),
        ("[::1]:9", ("::1", 9)),
        (":10090", ("", 10090)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_addresses(text, parsed):
    assert parse_listen_address(text) == parsed


@pytest.mark.parametrize("text", ["10090", "host:", "host:http", "::1:80", "h:70000"])
def test_bad_listen_addresses(text):
    with pytest.raises(ValueError, match="listen address"):
        parse_listen_address(text)


def test_the_default_address_is_loopback_outside_the_exporter_port_range():
    host, port = parse_listen_address(DEFAULT_LISTEN_ADDRESS)
    assert host == "127.0.0.1"
    assert not 9100 <= port <= 9999


def test_a_forked_worker_does_not_hold_the_listening_socket(exporter):
    with serving(exporter) as server:
        fd = server._server.socket.fileno()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report whether the listener's descriptor is still open
            try:
                os.fstat(fd)
                os.write(write_end, b"open")
            except OSError:
                os.write(write_end, b"closed")
            os._exit(0)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        assert os.read(read_end, 16) == b"closed" and status == 0
        os.close(read_end)
        assert fetch(server.url + "metrics")[0] == 200  # the parent still serves
