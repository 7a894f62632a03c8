"""MaxMind DB files as ownership sources, read with `maxminddb` (its C extension when built).

The kind of database is taken from its metadata `database_type`:

| kind       | database types                               | gives                              |
| ---------- | -------------------------------------------- | ---------------------------------- |
| enterprise | GeoIP2 (Precision) Enterprise, incl. Shield  | org, type (user_type), region, ASN |
| isp        | GeoIP2 ISP                                   | org (organization/isp), ASN        |
| asn        | GeoLite2 / GeoIP2 ASN                        | ASN and its organisation           |
| city       | GeoIP2 / GeoLite2 City                       | region (subdivision/city), country |
| country    | GeoIP2 / GeoLite2 Country                    | country                            |
| registry   | minewatch-ownership (built by `build_mmdb`)  | everything a registry line says    |

A file is checked when it is opened (every record of files up to
FULL_VERIFY_BYTES, a sample of larger ones), so a corrupt file is refused at
start-up with its name. Should a bad record still turn up mid-run, that lookup
answers "unknown" and is counted in `errors`: attribution never stops a sensor.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
from pathlib import Path
from typing import Any

import maxminddb

from sensor.attribute.errors import MmdbError
from sensor.attribute.prefixes import canonical_ip
from sensor.attribute.vocabulary import UNKNOWN, org_type_of_user_type
from sensor.model import Attribution

log = logging.getLogger(__name__)

REGISTRY_DATABASE_TYPE = "minewatch-ownership"
# Walking and decoding every record costs ~0.15 s per MiB: full checks for files
# up to this size, a sample of larger ones (whose lookups are still guarded).
FULL_VERIFY_BYTES = 8 << 20
SAMPLE_RECORDS = 20_000


def database_kind(database_type: str) -> str | None:
    """Our kind for a metadata database_type; None when we cannot use it."""
    if database_type == REGISTRY_DATABASE_TYPE:
        return "registry"
    for marker, kind in (
        ("Enterprise", "enterprise"),
        ("ISP", "isp"),
        ("ASN", "asn"),
        ("City", "city"),
        ("Country", "country"),
    ):
        if database_type.startswith(("GeoIP2-", "GeoLite2-")) and marker in database_type:
            return kind
    return None


def open_reader(path: str | Path, verify: str = "auto") -> maxminddb.Reader:
    """Open and check an mmdb file; MmdbError names the file and what is wrong.

    verify: "full" decodes every record, "sample" the first SAMPLE_RECORDS,
    "auto" chooses by file size, "none" trusts the file.
    """
    name = str(path)
    try:
        reader = maxminddb.open_database(name)  # MODE_AUTO: C extension, mmap
    except FileNotFoundError:
        raise MmdbError(name, "no such file") from None
    except OSError as exc:
        raise MmdbError(name, f"cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # the decoder raises many types for broken files
        raise MmdbError(name, f"not a valid MaxMind DB file ({_reason(exc, name)})") from None
    if verify == "auto":
        verify = "full" if os.path.getsize(name) <= FULL_VERIFY_BYTES else "sample"
    if verify != "none":
        _verify(reader, name, None if verify == "full" else SAMPLE_RECORDS)
    return reader


def _verify(reader: maxminddb.Reader, name: str, limit: int | None) -> None:
    """Walk the search tree and decode records: where a corrupt file shows itself."""
    try:
        for _ in itertools.islice(reader, limit):
            pass
    except Exception as exc:  # a corrupt tree or data section can raise anything
        reader.close()
        raise MmdbError(name, f"corrupt MaxMind DB file ({_reason(exc, name)})") from None


def _reason(exc: Exception, name: str) -> str:
    """The reader's message without the file name (the problem already names it)."""
    text = str(exc).replace(f" ({name})", "").strip()
    if "Is this a valid MaxMind DB file" in text:
        return "the reader cannot open it"
    return text or type(exc).__name__


class MmdbSource:
    """One mmdb file answering `lookup(ip)` with an Attribution (or None if it knows nothing)."""

    def __init__(
        self, path: str | Path, *, locales: tuple[str, ...] = ("en",), verify: str = "auto"
    ) -> None:
        self.path = str(path)
        self.name = Path(path).name
        self.source = f"mmdb:{self.name}"
        self.locales = locales
        self.errors = 0  # lookups that met a corrupt record mid-run
        self._reader = open_reader(path, verify)
        meta = self._reader.metadata()
        self.database_type: str = meta.database_type
        self.ip_version: int = meta.ip_version
        kind = database_kind(self.database_type)
        if kind is None:
            self._reader.close()
            raise MmdbError(self.path, _unsupported(self.database_type))
        self.kind: str = kind

    def lookup(self, ip: str) -> Attribution | None:
        """What this database says about `ip`; None when nothing (or not an address)."""
        address = canonical_ip(ip)
        if address is None or (self.ip_version == 4 and ":" in address):
            return None
        try:
            record, prefix_len = self._reader.get_with_prefix_len(address)
        except Exception as exc:  # a corrupt record: the pure-Python decoder raises anything
            self._count_error(ip, exc)
            return None
        if not isinstance(record, dict):
            return None
        if self.kind == "registry":
            return registry_attribution(record, self.source)
        found = CONVERTERS[self.kind](record, self.locales)
        found.source, found.network = self.source, _network_text(address, prefix_len)
        return found

    def _count_error(self, ip: str, exc: Exception) -> None:
        if self.errors == 0:
            log.warning("%s: lookup of %s failed, answering unknown: %s", self.path, ip, exc)
        self.errors += 1

    def close(self) -> None:
        self._reader.close()


def _unsupported(database_type: str) -> str:
    return (
        f"unsupported database type {database_type!r} (expected GeoIP2/GeoLite2 Enterprise, "
        f"ISP, ASN, City or Country, or a {REGISTRY_DATABASE_TYPE} file)"
    )


def _network_text(address: str, prefix_len: int) -> str:
    """The matched block as CIDR text (the reader gives its length, not its address)."""
    family, width = (socket.AF_INET6, 128) if ":" in address else (socket.AF_INET, 32)
    value = int.from_bytes(socket.inet_pton(family, address), "big")
    value = value >> (width - prefix_len) << (width - prefix_len)
    return f"{socket.inet_ntop(family, value.to_bytes(width // 8, 'big'))}/{prefix_len}"


def enterprise_attribution(record: dict[str, Any], locales: tuple[str, ...]) -> Attribution:
    traits = _dict(record.get("traits"))
    found = city_attribution(record, locales)
    found.name = _str(traits.get("organization")) or _str(traits.get("isp"))
    found.type = org_type_of_user_type(traits.get("user_type"))
    found.asn = _int(traits.get("autonomous_system_number"))
    found.asn_org = _str(traits.get("autonomous_system_organization"))
    return found


def isp_attribution(record: dict[str, Any], locales: tuple[str, ...]) -> Attribution:
    return Attribution(
        name=_str(record.get("organization")) or _str(record.get("isp")),
        asn=_int(record.get("autonomous_system_number")),
        asn_org=_str(record.get("autonomous_system_organization")),
    )


def asn_attribution(record: dict[str, Any], locales: tuple[str, ...]) -> Attribution:
    # An AS is the network that routes the address, not the organisation using it:
    # it fills asn/asn_org and leaves the name to a better source.
    return Attribution(
        asn=_int(record.get("autonomous_system_number")),
        asn_org=_str(record.get("autonomous_system_organization")),
    )


def city_attribution(record: dict[str, Any], locales: tuple[str, ...]) -> Attribution:
    """Region as "province/city" (first subdivision, then city), like registry regions."""
    subdivisions = record.get("subdivisions")
    first = _dict(subdivisions[0]) if isinstance(subdivisions, list) and subdivisions else {}
    parts = [_name(first, locales), _name(_dict(record.get("city")), locales)]
    region = "/".join(p for p in parts if p) or None
    return Attribution(region=region, country=_country(record))


def country_attribution(record: dict[str, Any], locales: tuple[str, ...]) -> Attribution:
    return Attribution(country=_country(record))


CONVERTERS = {
    "enterprise": enterprise_attribution,
    "isp": isp_attribution,
    "asn": asn_attribution,
    "city": city_attribution,
    "country": country_attribution,
}


def registry_attribution(record: dict[str, Any], source: str) -> Attribution:
    """A record written by build_mmdb: {"network", "owner": {org, org_type, ...}}."""
    owner = _dict(record.get("owner"))
    identifiers = _dict(owner.get("identifiers"))
    return Attribution(
        name=_str(owner.get("org")),
        type=_str(owner.get("org_type")) or UNKNOWN,
        region=_str(owner.get("region")),
        asn=_int(owner.get("asn")),
        source=source,
        country=_str(owner.get("country")),
        network=_str(record.get("network")),
        identifiers=tuple((str(k), str(v)) for k, v in identifiers.items()),
    )


def _country(record: dict[str, Any]) -> str | None:
    return _str(_dict(record.get("country")).get("iso_code"))


def _name(entity: dict[str, Any], locales: tuple[str, ...]) -> str | None:
    names = _dict(entity.get("names"))
    for locale in (*locales, "en"):
        name = _str(names.get(locale))
        if name:
            return name
    return next((v for v in names.values() if isinstance(v, str) and v), None)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
