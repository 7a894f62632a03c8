from __future__ import annotations

import pytest

from sensor.attribute.vocabulary import (
    ORG_TYPES,
    USER_TYPES,
    normalize_org_type,
    org_type_of_user_type,
)


def test_vocabulary_is_the_product_contract() -> None:
    assert ORG_TYPES == (
        "government",
        "education",
        "enterprise",
        "residential",
        "hosting",
        "cellular",
        "military",
        "other",
        "unknown",
    )


def test_every_user_type_maps_into_the_vocabulary() -> None:
    assert set(USER_TYPES.values()) <= set(ORG_TYPES)


@pytest.mark.parametrize(
    ("user_type", "org_type"),
    [
        ("college", "education"),
        ("school", "education"),
        ("library", "education"),
        ("government", "government"),
        ("military", "military"),
        ("business", "enterprise"),
        ("cafe", "enterprise"),
        ("residential", "residential"),
        ("hosting", "hosting"),
        ("content_delivery_network", "hosting"),
        ("search_engine_spider", "hosting"),
        ("cellular", "cellular"),
        ("traveler", "other"),
        ("consumer_privacy_network", "other"),
        ("router", "other"),
        ("Business", "enterprise"),
        ("something_new", "other"),
    ],
)
def test_user_type_mapping(user_type: str, org_type: str) -> None:
    assert org_type_of_user_type(user_type) == org_type


@pytest.mark.parametrize("missing", [None, "", 3])
def test_absent_user_type_is_none(missing: object) -> None:
    assert org_type_of_user_type(missing) is None


def test_normalize_org_type() -> None:
    assert normalize_org_type(" Education ") == "education"
    assert normalize_org_type("") == "unknown"
    assert normalize_org_type(None) == "unknown"
    assert normalize_org_type("university") is None
