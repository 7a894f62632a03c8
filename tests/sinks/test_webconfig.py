"""`--web.config.file` in the exporter-toolkit format: what loads, and errors naming file and line.

Also home of `make_pki`, the test certificates `test_web.py` serves with: a CA,
a server certificate for 127.0.0.1/localhost and a client certificate, made
with `cryptography` when installed, else a self-signed server certificate
from `openssl req` (no client certificate then).
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest

from sensor.sinks.webconfig import (
    RateLimit,
    WebConfigError,
    is_bcrypt_hash,
    load_web_config,
    parse_duration,
)

HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    client_cert: Path | None = None
    client_key: Path | None = None


def make_pki(folder: Path) -> Pki | None:
    """Certificates for loopback in `folder`, or None when neither tool is there."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return _openssl_pki(folder)
    return _cryptography_pki(folder)


def _cryptography_pki(folder: Path) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def issue(cn, key, issuer, signer, sans, ca=False):
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(signer, hashes.SHA256())

    def write(stem: str, cert, key) -> tuple[Path, Path]:
        crt, pem = folder / f"{stem}.crt", folder / f"{stem}.key"
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return crt, pem

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = issue("minewatch test CA", ca_key, name("minewatch test CA"), ca_key, [], ca=True)
    server_sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server_key, client_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    server = issue("localhost", server_key, ca.subject, ca_key, server_sans)
    client = issue("scraper", client_key, ca.subject, ca_key, [x509.DNSName("scraper.example")])
    ca_path, _ = write("ca", ca, ca_key)
    cert, key = write("server", server, server_key)
    client_cert, client_key_path = write("client", client, client_key)
    return Pki(ca_path, cert, key, client_cert, client_key_path)


def _openssl_pki(folder: Path) -> Pki | None:
    if shutil.which("openssl") is None:
        return None
    cert, key = folder / "server.crt", folder / "server.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return Pki(cert, cert, key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    made = make_pki(tmp_path_factory.mktemp("pki"))
    if made is None:
        pytest.skip("neither the cryptography package nor openssl is available")
    return made


def _write(folder: Path, text: str) -> Path:
    path = folder / "web.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_an_empty_file_means_plain_http_without_auth(tmp_path):
    config = load_web_config(_write(tmp_path, ""))
    assert (config.tls, dict(config.users), config.headers, config.rate_limit) == (
        None,
        {},
        (),
        None,
    )


def test_a_full_config_loads_with_paths_relative_to_the_file(pki, tmp_path):
    folder = tmp_path / "conf"
    folder.mkdir()
    for src in (pki.cert, pki.key, pki.ca):
        shutil.copy(src, folder / src.name)
    path = _write(
        folder,
        f"""
tls_server_config:
  cert_file: {pki.cert.name}
  key_file: {pki.key.name}
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: {pki.ca.name}
  client_allowed_sans: [scraper.example]
  min_version: TLS13
  prefer_server_cipher_suites: false
http_server_config:
  http2: true
  headers:
    X-Frame-Options: deny
    Content-Security-Policy: ""
basic_auth_users:
  alice: {HASH}
rate_limit:
  interval: 500ms
  burst: 5
""",
    )
    config = load_web_config(path)
    assert config.tls is not None
    assert config.tls.verify_mode == ssl.CERT_REQUIRED
    assert config.tls.minimum_version == ssl.TLSVersion.TLSv1_3
    assert config.allowed_sans == {"scraper.example"}
    assert config.users == {"alice": HASH.encode()}
    assert config.headers == (("X-Frame-Options", "deny"),)  # blank: unset
    assert config.rate_limit == RateLimit(0.5, 5)


def test_inline_pem_certificates_load(pki, tmp_path):
    def block(path: Path) -> str:
        return "|\n" + "".join(f"    {line}\n" for line in path.read_text().splitlines())

    text = f"tls_server_config:\n  cert: {block(pki.cert)}  key: {block(pki.key)}"
    config = load_web_config(_write(tmp_path, text))
    assert config.tls is not None and config.tls.verify_mode == ssl.CERT_NONE
    assert config.tls.minimum_version == ssl.TLSVersion.TLSv1_2  # the toolkit's default


def test_a_tls_section_without_certificates_means_no_tls(tmp_path):
    config = load_web_config(_write(tmp_path, "tls_server_config:\n  min_version: TLS12\n"))
    assert config.tls is None


BAD = {
    "unknown top key": (
        "basic_auth_user:\n  a: b\n",
        "1: web config: unknown key 'basic_auth_user'",
    ),
    "not a mapping": ("- a\n", "1: web config: expected a mapping"),
    "bad yaml": ("a: [1,\n", "invalid YAML"),
    "not bcrypt": (
        "basic_auth_users:\n  alice: secret\n",
        "2: basic_auth_users: alice: not a bcrypt",
    ),
    "colon in user": (f"basic_auth_users:\n  'a:b': {HASH}\n", "bad user name 'a:b'"),
    "unknown header": (
        "http_server_config:\n  headers:\n    Server: x\n",
        "3: http_server_config: headers: unknown key 'Server'",
    ),
    "bad frame option": (
        "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
        "bad value for X-Frame-Options",
    ),
    "http2 not bool": ("http_server_config:\n  http2: maybe\n", "http2: expected true or false"),
    "zero burst": ("rate_limit:\n  interval: 1s\n  burst: 0\n", "burst must be 1 or more"),
    "bad interval": ("rate_limit:\n  interval: soon\n  burst: 1\n", "bad duration 'soon'"),
    "unknown tls key": ("tls_server_config:\n  certfile: a\n", "2: tls_server_config: unknown key"),
    "cert without key": (
        "tls_server_config:\n  cert_file: a.crt\n",
        "key_file (or key) is missing",
    ),
    "key without cert": (
        "tls_server_config:\n  key_file: a.key\n",
        "cert_file (or cert) is missing",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_configs_name_the_file_and_line(tmp_path, case):
    text, message = BAD[case]
    path = _write(tmp_path, text)
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    assert str(caught.value).startswith(f"{path}:")
    assert message in str(caught.value)
    assert caught.value.path == path


TLS_BAD = {
    "both cert and cert_file": ("cert: x", "give cert or cert_file, not both"),
    "unknown auth type": ("client_auth_type: Maybe", "unknown client_auth_type 'Maybe'"),
    "unverified client certs": ("client_auth_type: RequireAnyClientCert", "not supported"),
    "request client cert": ("client_auth_type: RequestClientCert", "not supported"),
    "verify without ca": ("client_auth_type: RequireAndVerifyClientCert", "needs client_ca_file"),
    "ca without verify": ("client_ca_file: {ca}", "client_auth_type is NoClientCert"),
    "sans without require": (
        "client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: {ca}\n"
        "  client_allowed_sans: [a]",
        "client_allowed_sans needs RequireAndVerifyClientCert",
    ),
    "min above max": ("min_version: TLS13\n  max_version: TLS12", "min_version is above"),
    "unknown version": ("min_version: SSL3", "unknown version 'SSL3'"),
    "cipher suites": ("cipher_suites: [TLS_AES_128_GCM_SHA256]", "cipher_suites is not supported"),
    "curves": ("curve_preferences: [X25519]", "curve_preferences is not supported"),
}


@pytest.mark.parametrize("case", sorted(TLS_BAD))
def test_tls_settings_the_ssl_module_cannot_honour_are_refused(pki, tmp_path, case):
    extra, message = TLS_BAD[case]
    extra = extra.format(cert=pki.cert, ca=pki.ca)
    text = f"tls_server_config:\n  cert_file: {pki.cert}\n  key_file: {pki.key}\n  {extra}\n"
    path = _write(tmp_path, text)
    with pytest.raises(WebConfigError, match=message) as caught:
        load_web_config(path)
    assert str(caught.value).startswith(str(path))


def test_unreadable_certificates_name_both_files(tmp_path):
    (tmp_path / "bad.crt").write_text("not a certificate\n")
    path = _write(tmp_path, "tls_server_config:\n  cert_file: bad.crt\n  key_file: none.key\n")
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "cannot load" in message
    assert str(tmp_path / "bad.crt") in message and str(tmp_path / "none.key") in message


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(WebConfigError, match=r"nowhere\.yml: cannot read"):
        load_web_config(tmp_path / "nowhere.yml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("900", 900.0), ("90s", 90.0), ("15m", 900.0), ("1h30m", 5400.0), ("500ms", 0.5), ("0", 0.0)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-5", "5x", "m5", "1h-3m", "nan"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


def test_bcrypt_shapes():
    assert is_bcrypt_hash(HASH)
    assert is_bcrypt_hash("$2y$" + HASH[4:])  # htpasswd's prefix
    assert not is_bcrypt_hash("$2y$03$" + HASH[7:])  # cost below 4
    assert not is_bcrypt_hash(HASH[:-1] + "!")
    assert not is_bcrypt_hash("$1$" + HASH[3:])
