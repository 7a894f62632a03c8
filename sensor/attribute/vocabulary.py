"""The one vocabulary of organisation types, and MaxMind's user types mapped onto it.

Registries, mmdb files, events, reports and metrics labels all use these names,
so a report split by org type never mixes "college" with "education".
"""

from __future__ import annotations

ORG_TYPES = (
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

UNKNOWN = "unknown"

# MaxMind `traits.user_type` (GeoIP2 Enterprise / Precision Enterprise) -> org type.
# The question a regulator asks is "whose machine is this?", so each user type
# maps to the kind of organisation that owns the address, not to who browses from it:
USER_TYPES = {
    "college": "education",
    "school": "education",
    # Public libraries are public-service institutions run with education
    # budgets; hijacked library PCs count as public resources like a school's.
    "library": "education",
    "government": "government",
    "military": "military",
    "business": "enterprise",
    # An internet cafe is a business whose own machines are rented out.
    "cafe": "enterprise",
    "residential": "residential",
    "dialup": "residential",
    "hosting": "hosting",
    "content_delivery_network": "hosting",
    # Crawlers run in data centres.
    "search_engine_spider": "hosting",
    "cellular": "cellular",
    # Hotel and airport Wi-Fi: the machines are guests' own, not the venue's.
    "traveler": "other",
    # VPN / proxy exits hide the real owner; an ISP's router owns no miners.
    "consumer_privacy_network": "other",
    "router": "other",
}


def org_type_of_user_type(user_type: object) -> str | None:
    """The org type for a MaxMind user type; None when absent, "other" when unrecognised."""
    if not isinstance(user_type, str) or not user_type:
        return None
    return USER_TYPES.get(user_type.strip().lower(), "other")


def normalize_org_type(text: str | None) -> str | None:
    """A registry's org_type in canonical form: blank -> "unknown", unlisted -> None."""
    value = (text or "").strip().lower()
    if not value:
        return UNKNOWN
    return value if value in ORG_TYPES else None
