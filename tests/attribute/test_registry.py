from __future__ import annotations

from pathlib import Path

import pytest

from sensor.attribute.errors import RegistryError
from sensor.attribute.registry import (
    MAX_PROBLEMS,
    index_records,
    load_registry,
    read_registry,
)

CSV = """\ufeffnetwork,org,org_type,region,asn,country,reg_no,contact
# campus and city government
10.0.0.0/8,Nanjing University,education,Jiangsu/Nanjing,AS4538,cn,12100000466007,noc@nju

2001:da8:1000::/36, Nanjing University ,Education,Jiangsu/Nanjing,4538,,,
::ffff:58.192.0.0/112,Suzhou Government,government,Jiangsu/Suzhou,,,,
58.193.0.0/16,Xuzhou Steel,,Jiangsu/Xuzhou,,,,
"""

YAML = """\
# owners of the city network
- network: 10.0.0.0/8
  org: Nanjing University
  org_type: education
  region: Jiangsu/Nanjing
  asn: 4538
  reg_no: 12100000466007
- network: 2001:da8:1000::/36
  org: Nanjing University
  org_type: education
  region: Jiangsu/Nanjing
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    _, problems = read_registry(path)
    assert problems, "expected problems"
    return [str(p) for p in problems]


def test_csv_records(tmp_path: Path) -> None:
    path = write(tmp_path, "owners.csv", CSV)
    records = load_registry(path)
    assert [str(r.network) for r in records] == [
        "10.0.0.0/8",
        "2001:da8:1000::/36",
        "58.192.0.0/16",  # IPv4-mapped written as the IPv4 network it means
        "58.193.0.0/16",
    ]
    first = records[0]
    assert (first.org, first.org_type, first.region) == (
        "Nanjing University",
        "education",
        "Jiangsu/Nanjing",
    )
    assert (first.asn, first.country) == (4538, "CN")
    assert first.identifiers == (("reg_no", "12100000466007"), ("contact", "noc@nju"))
    assert first.where == f"{path}:3"
    assert records[1].org == "Nanjing University" and records[1].org_type == "education"
    assert records[1].line == 5
    assert records[3].org_type == "unknown"  # blank org_type


def test_record_attribution(tmp_path: Path) -> None:
    record = load_registry(write(tmp_path, "owners.csv", CSV))[0]
    found = record.attribution()
    assert found.as_dict() == {
        "name": "Nanjing University",
        "type": "education",
        "region": "Jiangsu/Nanjing",
        "asn": 4538,
        "source": "registry:owners.csv",
        "country": "CN",
        "asn_org": None,
        "network": "10.0.0.0/8",
        "identifiers": {"reg_no": "12100000466007", "contact": "noc@nju"},
    }


def test_yaml_records_with_lines(tmp_path: Path) -> None:
    records = load_registry(write(tmp_path, "owners.yaml", YAML))
    assert [(str(r.network), r.line) for r in records] == [
        ("10.0.0.0/8", 2),
        ("2001:da8:1000::/36", 8),
    ]
    assert records[0].asn == 4538
    assert records[0].identifiers == (("reg_no", "12100000466007"),)


def test_csv_errors_name_file_and_line_all_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.csv",
        "network,org,org_type,region,asn,country\n"
        "10.0.0.0/8,A,education,R,,\n"
        "10.0.0.1/8,B,education,R,,\n"
        "10.2.0.0/16,C,university,R,,\n"
        "10.3.0.0/16,D,enterprise,R,AS-x,\n"
        "10.4.0.0/16,E,enterprise,R,,China\n"
        "not-a-net,F,enterprise,R,,\n"
        ",G,enterprise,R,,\n"
        "10.5.0.0/16,H,enterprise,R,,,extra\n",
    )
    problems = problems_of(path)
    assert problems == [
        f"{path}:3: bad network '10.0.0.1/8': 10.0.0.1/8 has host bits set",
        f"{path}:4: unknown org_type 'university' (expected one of government, education, "
        "enterprise, residential, hosting, cellular, military, other, unknown)",
        f"{path}:5: bad asn 'AS-x' (expected a number such as 4134 or AS4134)",
        f"{path}:6: bad country 'China' (expected a two-letter ISO code such as CN)",
        f"{path}:7: bad network 'not-a-net': 'not-a-net' does not appear to be an IPv4 or "
        "IPv6 network",
        f"{path}:8: network is empty",
        f"{path}:9: 7 fields but the header has 6",
    ]
    with pytest.raises(RegistryError) as raised:
        load_registry(path)
    assert raised.value.paths == [str(path)]
    assert str(raised.value).splitlines()[0].startswith(f"{path}:3: ")


def test_csv_header_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "hdr.csv", "cidr,org,type\n10.0.0.0/8,A,education\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:1: header lacks network, org_type, region")
    path = write(tmp_path, "dup.csv", "network,org,org_type,region,org\n")
    assert problems_of(path) == [f"{path}:1: repeated column org"]


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    empty = write(tmp_path, "empty.csv", "")
    assert problems_of(empty)[0].startswith(f"{empty}: empty; expected a header row")
    assert read_registry(write(tmp_path, "empty.yaml", "# nothing yet\n")) == ([], [])
    missing = tmp_path / "missing.csv"
    assert problems_of(missing) == [f"{missing}: cannot read: No such file or directory"]
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"network,org,org_type,region\n10.0.0.0/8,Caf\xe9,enterprise,\n")
    assert problems_of(latin) == [f"{latin}:2: not UTF-8 text (save the file as UTF-8)"]
    other = write(tmp_path, "owners.txt", "")
    assert problems_of(other) == [f"{other}: not a registry file (expected .csv, .yaml, .yml)"]


def test_yaml_errors_name_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.yaml",
        "- network: 10.0.0.0/8\n"
        "  org_type: education\n"
        "- just a string\n"
        "- network: 10.1.0.0/33\n"
        "  org_type: education\n"
        "- network: 10.2.0.0/16\n"
        "  org_type: education\n"
        "  contact: {name: x}\n",
    )
    assert problems_of(path) == [
        f"{path}:3: expected a mapping of names to values",
        f"{path}:4: bad network '10.1.0.0/33': '10.1.0.0/33' does not appear to be an IPv4 "
        "or IPv6 network",
        f"{path}:6: contact: expected text or a number, not a dict",
    ]


def test_yaml_that_is_not_a_list_or_not_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "map.yml", "\n\nnetwork: 10.0.0.0/8\n")
    assert problems_of(path) == [
        f"{path}:3: expected a list of mappings with network,org,org_type,region"
    ]
    path = write(tmp_path, "broken.yaml", "- network: 10.0.0.0/8\n  org: [unclosed\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:3: not valid YAML: ")


def test_problems_are_capped(tmp_path: Path) -> None:
    rows = "".join(f"bad{i},x,education,\n" for i in range(MAX_PROBLEMS * 3))
    path = write(tmp_path, "junk.csv", "network,org,org_type,region\n" + rows)
    problems = problems_of(path)
    assert len(problems) == MAX_PROBLEMS + 2
    assert problems[-1] == f"{path}: too many problems; stopped reading"


def test_index_keeps_first_of_a_repeated_prefix(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "r.csv",
        "network,org,org_type,region\n10.0.0.0/8,First,education,\n10.0.0.0/8,Second,other,\n"
        "10.1.0.0/16,Inner,enterprise,\n",
    )
    index = index_records(load_registry(path))
    found = [index.lookup(ip) for ip in ("10.0.0.1", "10.1.0.1", "::ffff:10.1.0.1")]
    assert [(r.org, str(r.network)) if r else None for r in found] == [
        ("First", "10.0.0.0/8"),
        ("Inner", "10.1.0.0/16"),
        ("Inner", "10.1.0.0/16"),
    ]
