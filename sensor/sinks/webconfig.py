"""`--web.config.file`: the Prometheus exporter-toolkit web configuration format.

The same YAML file node_exporter and friends read, so operators reuse what
they have:

    tls_server_config: {cert_file, key_file | cert, key, client_auth_type,
                        client_ca_file | client_ca, client_allowed_sans,
                        min_version, max_version, prefer_server_cipher_suites}
    http_server_config: {http2, headers}
    basic_auth_users: {user: bcrypt hash}
    rate_limit: {interval, burst}

As in exporter-toolkit, unknown keys are errors, relative file names are
relative to the config file's folder, and TLS 1.2 is the default minimum.
Settings that the stdlib ssl module cannot honour are refused with a clear
error rather than ignored, because an ignored security setting is one the
operator believes in wrongly: `cipher_suites` and `curve_preferences` (Go
names; OpenSSL's defaults apply), and the client auth types that accept a
client certificate without verifying it. `http2` is accepted and ignored
(HTTP/1.1 is served). The file is read once, at start-up.

Every error names the file and, where it can, the line.
"""

from __future__ import annotations

import re
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node

TLS_KEYS = {
    "cert",
    "key",
    "client_ca",
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_allowed_sans",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
}
TOP_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"}
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# client_auth_type -> stdlib verify mode; None: not possible with the ssl module.
CLIENT_AUTH: dict[str, ssl.VerifyMode | None] = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    "RequestClientCert": None,
    "RequireAnyClientCert": None,
}
# The response headers exporter-toolkit lets a config set, with allowed values (None: any).
HEADERS: dict[str, frozenset[str] | None] = {
    "Content-Security-Policy": None,
    "X-Frame-Options": frozenset({"deny", "sameorigin"}),
    "X-Content-Type-Options": frozenset({"nosniff"}),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
_BCRYPT_ALPHABET = frozenset("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y))+\Z")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class WebConfigError(Exception):
    """A web config file that cannot be used; the message names the file (and line)."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = path


@dataclass(frozen=True, slots=True)
class RateLimit:
    interval: float  # seconds between requests, on average
    burst: int


@dataclass(frozen=True)
class WebConfig:
    """What the web server needs: TLS context, users, headers, rate limit (all optional)."""

    source: Path | None = None
    tls: ssl.SSLContext | None = None
    allowed_sans: frozenset[str] = frozenset()
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()
    rate_limit: RateLimit | None = None


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration ("90s", "15m", "1h30m", "500ms"); bare numbers
    are seconds. Raises ValueError."""
    text = str(text).strip()
    try:
        return _non_negative(float(text), text)
    except ValueError:
        pass
    if not _DURATION.match(text):
        raise ValueError(f"bad duration {text!r} (e.g. 900, 90s, 15m, 1h30m, 500ms)")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def _non_negative(value: float, text: str) -> float:
    if value < 0 or value != value:
        raise ValueError(f"bad duration {text!r}: must be 0 or more")
    return value


def is_bcrypt_hash(value: str) -> bool:
    """Whether `value` has the shape of a bcrypt hash ($2a$/$2b$/$2y$, cost 04-31, 53 chars)."""
    if len(value) != 60 or not value.startswith(_BCRYPT_PREFIXES) or value[6] != "$":
        return False
    cost = value[4:6]
    return cost.isdigit() and 4 <= int(cost) <= 31 and set(value[7:]) <= _BCRYPT_ALPHABET


class _Reader:
    """Walks the composed YAML of one file, so that every error can name its line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.folder = path.parent

    def fail(self, message: str, node: Node | None = None) -> WebConfigError:
        line = node.start_mark.line + 1 if node is not None else None
        return WebConfigError(self.path, message, line)

    def mapping(self, node: Node, where: str, allowed: set[str] | None) -> dict[str, Node]:
        if not isinstance(node, MappingNode):
            raise self.fail(f"{where}: expected a mapping", node)
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node)
            if not isinstance(key, str):
                raise self.fail(f"{where}: keys must be strings, not {key!r}", key_node)
            if allowed is not None and key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(f"{where}: unknown key {key!r} (known: {known})", key_node)
            if key in out:
                raise self.fail(f"{where}: {key!r} given twice", key_node)
            out[key] = value_node
        return out

    @staticmethod
    def value(node: Node) -> Any:
        return SafeConstructor().construct_object(node, deep=True)

    def string(self, node: Node, where: str) -> str:
        value = self.value(node)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}: expected a non-empty string", node)
        return value

    def strings(self, node: Node, where: str) -> list[str]:
        value = self.value(node)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{where}: expected a list of strings", node)
        return value

    def boolean(self, node: Node, where: str) -> bool:
        value = self.value(node)
        if not isinstance(value, bool):
            raise self.fail(f"{where}: expected true or false", node)
        return value

    def file(self, node: Node, where: str) -> Path:
        path = Path(self.string(node, where)).expanduser()
        return path if path.is_absolute() else self.folder / path


def load_web_config(path: Path) -> WebConfig:
    """Read and check a web config file; raises WebConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WebConfigError(path, f"cannot read: {exc}") from exc
    try:
        root = yaml.compose(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise WebConfigError(path, f"invalid YAML: {exc.problem}", line) from exc
    except yaml.YAMLError as exc:
        raise WebConfigError(path, f"invalid YAML: {exc}") from exc
    if root is None:
        return WebConfig(source=path)  # an empty file: plain HTTP, no auth
    reader = _Reader(path)
    top = reader.mapping(root, "web config", TOP_KEYS)
    tls, sans = _tls(reader, top["tls_server_config"]) if "tls_server_config" in top else (None, [])
    return WebConfig(
        source=path,
        tls=tls,
        allowed_sans=frozenset(sans),
        users=_users(reader, top["basic_auth_users"]) if "basic_auth_users" in top else {},
        headers=_headers(reader, top["http_server_config"]) if "http_server_config" in top else (),
        rate_limit=_rate_limit(reader, top["rate_limit"]) if "rate_limit" in top else None,
    )


def _users(reader: _Reader, node: Node) -> dict[str, bytes]:
    if reader.value(node) is None:
        return {}
    users: dict[str, bytes] = {}
    for user, hash_node in reader.mapping(node, "basic_auth_users", None).items():
        if ":" in user or not user:
            raise reader.fail(f"basic_auth_users: bad user name {user!r}", node)
        hashed = reader.value(hash_node)
        if not isinstance(hashed, str) or not is_bcrypt_hash(hashed):
            message = f"basic_auth_users: {user}: not a bcrypt hash (htpasswd -nBC 10 '' makes one)"
            raise reader.fail(message, hash_node)
        users[user] = hashed.encode("ascii")
    return users


def _headers(reader: _Reader, node: Node) -> tuple[tuple[str, str], ...]:
    if reader.value(node) is None:
        return ()
    section = reader.mapping(node, "http_server_config", {"http2", "headers"})
    if "http2" in section:
        reader.boolean(section["http2"], "http_server_config: http2")  # HTTP/1.1 is served
    if "headers" not in section or reader.value(section["headers"]) is None:
        return ()
    headers = []
    where = "http_server_config: headers"
    for name, value_node in reader.mapping(section["headers"], where, set(HEADERS)).items():
        value = reader.value(value_node)
        if value is None or value == "":
            continue  # blank: unset, as exporter-toolkit reads it
        allowed = HEADERS[name]
        if not isinstance(value, str) or (allowed is not None and value.lower() not in allowed):
            raise reader.fail(f"{where}: bad value for {name}: {value!r}", value_node)
        headers.append((name, value))
    return tuple(headers)


def _rate_limit(reader: _Reader, node: Node) -> RateLimit | None:
    if reader.value(node) is None:
        return None
    section = reader.mapping(node, "rate_limit", {"interval", "burst"})
    interval = 0.0
    if "interval" in section:
        try:
            interval = parse_duration(reader.value(section["interval"]))
        except ValueError as exc:
            raise reader.fail(f"rate_limit: interval: {exc}", section["interval"]) from exc
    if not interval:
        return None  # 0 turns the limiter off
    burst = reader.value(section["burst"]) if "burst" in section else 0
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 1:
        raise reader.fail("rate_limit: burst must be 1 or more (0 refuses every request)", node)
    return RateLimit(interval, burst)


def _tls(reader: _Reader, node: Node) -> tuple[ssl.SSLContext | None, list[str]]:
    if reader.value(node) is None:
        return None, []
    section = reader.mapping(node, "tls_server_config", TLS_KEYS)
    cert = _pem(reader, section, "cert", "cert_file")
    key = _pem(reader, section, "key", "key_file")
    if cert is None and key is None:
        return None, []  # as exporter-toolkit: no certificate, no TLS
    if cert is None or key is None:
        missing = "cert_file (or cert)" if cert is None else "key_file (or key)"
        raise reader.fail(f"tls_server_config: {missing} is missing", node)
    _refuse_go_only(reader, section)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _versions(reader, section, ctx)
    _load_chain(reader, ctx, cert, key)
    sans = _client_auth(reader, section, ctx, node)
    prefer = section.get("prefer_server_cipher_suites")
    if prefer is None or reader.boolean(prefer, "tls_server_config: prefer_server_cipher_suites"):
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx, sans


Pem = tuple[str, str | Path]  # ("inline", text) or ("file", path)


def _pem(reader: _Reader, section: dict[str, Node], inline: str, file: str) -> Pem | None:
    if inline in section and file in section:
        raise reader.fail(f"tls_server_config: give {inline} or {file}, not both", section[file])
    if inline in section:
        return ("inline", reader.string(section[inline], f"tls_server_config: {inline}"))
    if file in section:
        return ("file", reader.file(section[file], f"tls_server_config: {file}"))
    return None


def _refuse_go_only(reader: _Reader, section: dict[str, Node]) -> None:
    for key in ("cipher_suites", "curve_preferences"):
        if key in section and reader.strings(section[key], f"tls_server_config: {key}"):
            message = f"tls_server_config: {key} is not supported (OpenSSL's defaults apply)"
            raise reader.fail(message, section[key])


def _versions(reader: _Reader, section: dict[str, Node], ctx: ssl.SSLContext) -> None:
    chosen = {"min_version": "TLS12", "max_version": "TLS13"}
    for key in chosen:
        if key in section:
            chosen[key] = reader.string(section[key], f"tls_server_config: {key}")
            if chosen[key] not in TLS_VERSIONS:
                known = ", ".join(TLS_VERSIONS)
                message = f"tls_server_config: {key}: unknown version {chosen[key]!r} ({known})"
                raise reader.fail(message, section[key])
    low, high = TLS_VERSIONS[chosen["min_version"]], TLS_VERSIONS[chosen["max_version"]]
    if low > high:
        raise reader.fail("tls_server_config: min_version is above max_version")
    ctx.minimum_version, ctx.maximum_version = low, high


def _load_chain(reader: _Reader, ctx: ssl.SSLContext, cert: Pem, key: Pem) -> None:
    named = " and ".join(str(v) for kind, v in (cert, key) if kind == "file") or "inline PEM"
    try:
        with tempfile.TemporaryDirectory(prefix="minewatch-tls-") as tmp:
            # The ssl module loads certificates and keys from files only.
            paths = [_as_file(pem, Path(tmp) / name) for pem, name in ((cert, "c"), (key, "k"))]
            ctx.load_cert_chain(paths[0], paths[1])
    except (OSError, ssl.SSLError) as exc:
        raise reader.fail(f"tls_server_config: cannot load {named}: {exc}") from exc


def _as_file(pem: Pem, spare: Path) -> Path:
    kind, value = pem
    if kind == "file":
        return Path(value)
    spare.touch(mode=0o600)
    spare.write_text(str(value), encoding="ascii")
    return spare


def _client_auth(
    reader: _Reader, section: dict[str, Node], ctx: ssl.SSLContext, node: Node
) -> list[str]:
    name = "NoClientCert"
    if "client_auth_type" in section:
        name = reader.string(section["client_auth_type"], "tls_server_config: client_auth_type")
    if name not in CLIENT_AUTH:
        known = ", ".join(CLIENT_AUTH)
        raise reader.fail(f"tls_server_config: unknown client_auth_type {name!r} ({known})", node)
    mode = CLIENT_AUTH[name]
    if mode is None:
        message = f"tls_server_config: client_auth_type {name} is not supported (it accepts "
        raise reader.fail(message + "unverified certificates); use RequireAndVerifyClientCert")
    ca = _pem(reader, section, "client_ca", "client_ca_file")
    if ca is None and mode != ssl.CERT_NONE:
        raise reader.fail(f"tls_server_config: client_auth_type {name} needs client_ca_file", node)
    if ca is not None and mode == ssl.CERT_NONE:
        message = "tls_server_config: client_ca_file is set but client_auth_type is NoClientCert"
        raise reader.fail(message + " (use RequireAndVerifyClientCert)", node)
    if ca is not None:
        _load_ca(reader, ctx, ca)
    ctx.verify_mode = mode
    sans_node = section.get("client_allowed_sans")
    sans = (
        reader.strings(sans_node, "tls_server_config: client_allowed_sans")
        if sans_node is not None
        else []
    )
    if sans and mode != ssl.CERT_REQUIRED:
        message = "tls_server_config: client_allowed_sans needs RequireAndVerifyClientCert"
        raise reader.fail(message, node)
    return sans


def _load_ca(reader: _Reader, ctx: ssl.SSLContext, ca: Pem) -> None:
    kind, value = ca
    try:
        if kind == "file":
            ctx.load_verify_locations(cafile=str(value))
        else:
            ctx.load_verify_locations(cadata=str(value))
    except (OSError, ssl.SSLError) as exc:
        where = value if kind == "file" else "client_ca"
        raise reader.fail(f"tls_server_config: cannot load {where}: {exc}") from exc
