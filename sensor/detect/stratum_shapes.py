"""Protocol shapes that tell the JSON stratum families (and some coins) apart.

Stratum v1 and NiceHash's EthereumStratum/1.0.0 share method names, so the family of a flow
is read from the shape of its messages instead: which params a notify carries, what a
subscribe names, what the pool answers. `StratumSession` (sensor/detect/stratum_v1.py)
collects these shapes and both detectors decide from `ethash_verdict`.
"""

from __future__ import annotations

from typing import Any

# difficulty = BDIFF1_TARGET / target, where BDIFF1_TARGET is Bitcoin's difficulty-1 target
# 0x00000000ffff0000...0000 (64 hex digits) = 0xffff * 2**208, as NiceHash specifies.
BDIFF1_TARGET = 0xFFFF << 208
_HEX_DIGITS = "0123456789abcdefABCDEF"
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
_KADENA_HEADER_HEX = 572  # a chainweb work header is 286 bytes


class Shape:
    """Protocol shapes that tell the stratum families (and some coins) apart.

    Plain int bit flags: `enum.IntFlag` arithmetic costs about a microsecond
    an operation, and shapes are combined for every stratum message.
    """

    ES_SUBSCRIBE = 1 << 0  # subscribe params[1] = "EthereumStratum/x"
    ES_SUBMIT = 1 << 1  # submit [worker, job, minernonce] with a 5..7 byte bare-hex nonce
    ETH_WALLET = 1 << 2  # login is an Ethash-coin address
    ES_RESULT = 1 << 3  # subscribe result [["mining.notify", id, "EthereumStratum/x"], en]
    ETHASH_NOTIFY = 1 << 4  # notify [job, seedhash, headerhash, clean]
    EXTRANONCE_SIZE = 1 << 5  # set_extranonce [extranonce1, extranonce2_size]
    KASPA_NOTIFY = 1 << 6  # notify [job, [u64 x4], timestamp] or [job, 80-hex header]
    KASPA_RESULT = 1 << 7  # subscribe result [true, "EthereumStratum/1.0.0"]
    ERGO_NOTIFY = 1 << 8  # notify [job, height, msg, "", "", version, target, ...]
    KADENA_NOTIFY = 1 << 9  # notify [job, 286-byte header hex (, clean)]
    ZCASH_NOTIFY = 1 << 10  # notify, 8 params, params[1] = version "04000000"
    ZHASH_NOTIFY = 1 << 11  # Zcash notify plus ALGO_TYPE and PERSONALIZATION (10 params)
    KAWPOW_NOTIFY = 1 << 12  # notify [job, header, seed, target, clean, height, bits]
    BITCOIN_NOTIFY = 1 << 13  # notify with merkle branch list at params[4]
    OTHER_NOTIFY = 1 << 14  # Octopus, Alephium, FishHash job shapes
    HOST_SUBSCRIBE = 1 << 15  # subscribe [agent, session, host, port] (Zcash, KawPow)
    SET_TARGET = 1 << 16
    CONFIGURE = 1 << 17  # BIP 310 version rolling: SHA-256 ASICs
    EXTRANONCE2_RESULT = 1 << 18  # subscribe result [..., extranonce1, extranonce2_size]
    OTHER_WALLET = 1 << 19  # login is an address of a non-Ethash coin


STRONG_ETHASH = Shape.ES_RESULT | Shape.ETHASH_NOTIFY
WEAK_ETHASH = Shape.ES_SUBSCRIBE | Shape.ES_SUBMIT | Shape.ETH_WALLET
WEAK_OTHER = Shape.EXTRANONCE_SIZE
_ALL = {name: bit for name, bit in vars(Shape).items() if name.isupper()}
STRONG_OTHER = sum(_ALL.values()) & ~(STRONG_ETHASH | WEAK_ETHASH | WEAK_OTHER)
NO_SHAPE = 0
NOTIFY_SHAPES = sum(bit for name, bit in _ALL.items() if name.endswith("_NOTIFY"))


def ethash_verdict(shapes: int) -> bool | None:
    """True: Ethash EthereumStratum; False: another stratum family; None: no family shape."""
    if shapes & STRONG_OTHER:
        return False
    if shapes & STRONG_ETHASH:
        return True
    if shapes & WEAK_OTHER:
        return False
    if shapes & WEAK_ETHASH:
        return True
    return None


def target_to_difficulty(target: str) -> float | None:
    """Pool difficulty for a 256-bit hex target: BDIFF1_TARGET / target (None if invalid)."""
    digits = target[2:] if target[:2] in ("0x", "0X") else target
    if not digits or len(digits) > 64 or not is_hex(digits):
        return None
    value = int(digits, 16)
    return BDIFF1_TARGET / value if value else None


def is_hex(text: str) -> bool:
    # strip() removes only hex digits at the ends, so anything left is a non-hex character.
    return not text.strip(_HEX_DIGITS)


def _is_hash(value: Any) -> bool:
    """A 32-byte hash as hex, with or without 0x."""
    if not isinstance(value, str):
        return False
    digits = value[2:] if value[:2] == "0x" else value
    return len(digits) == 64 and is_hex(digits)


def _es_version(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("EthereumStratum/")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def host_of(value: Any) -> str | None:
    """A pool host name from Zcash/KawPow subscribe params[2] (not an IP literal, not a hash)."""
    if not isinstance(value, str) or "." not in value or len(value) > 253:
        return None
    if not _HOST_CHARS.issuperset(value) or value.replace(".", "").isdigit():
        return None
    return value.lower()


def notify_shape(params: list[Any]) -> int:
    n = len(params)
    if n in (3, 4) and _is_hash(params[1]) and _is_hash(params[2]):
        return Shape.ETHASH_NOTIFY if n == 3 or isinstance(params[3], bool) else NO_SHAPE
    if n == 3 and isinstance(params[1], list) and len(params[1]) == 4:
        return Shape.KASPA_NOTIFY
    if n in (2, 3) and isinstance(params[1], str) and is_hex(params[1]):
        size = len(params[1])
        if size in (64, 80):
            return Shape.KASPA_NOTIFY
        return Shape.KADENA_NOTIFY if size == _KADENA_HEADER_HEX else NO_SHAPE
    if n >= 8 and params[1] == "04000000":
        return Shape.ZCASH_NOTIFY if n == 8 else Shape.ZHASH_NOTIFY
    if n >= 7 and isinstance(params[1], int) and params[3] == "" and params[4] == "":
        return Shape.ERGO_NOTIFY
    if n == 7 and _is_hash(params[1]) and _is_hash(params[2]) and isinstance(params[4], bool):
        return Shape.KAWPOW_NOTIFY
    if n >= 9 and isinstance(params[4], list):
        return Shape.BITCOIN_NOTIFY
    if n == 4 and isinstance(params[1], str) and params[1].isdigit():  # Octopus: height
        return Shape.OTHER_NOTIFY
    if all(isinstance(job, dict) for job in params):  # Alephium: a list of job objects
        return Shape.OTHER_NOTIFY
    return NO_SHAPE


def subscribe_shape(params: list[Any]) -> int:
    if len(params) >= 2 and _es_version(params[1]):
        return Shape.ES_SUBSCRIBE
    if len(params) >= 4 and host_of(params[2]):
        return Shape.HOST_SUBSCRIBE
    return NO_SHAPE


def submit_shape(params: list[Any]) -> int:
    # EthereumStratum sends only the miner's part of the nonce: 8 bytes minus a 1..3 byte
    # extranonce, as bare hex; Kaspa sends a full 0x-prefixed nonce, Bitcoin 5+ params.
    if len(params) == 3 and isinstance(params[2], str) and 10 <= len(params[2]) <= 14:
        return Shape.ES_SUBMIT if is_hex(params[2]) else NO_SHAPE
    return NO_SHAPE


def result_shape(result: Any) -> int:
    """Shapes of a pool's answer to mining.subscribe."""
    if not isinstance(result, list) or len(result) < 2:
        return NO_SHAPE
    head = result[0]
    if isinstance(head, list) and len(head) >= 3 and head[0] == "mining.notify":
        version = head[2]
        return Shape.ES_RESULT if _es_version(version) else NO_SHAPE
    if head is True and _es_version(result[1]):
        return Shape.KASPA_RESULT
    if len(result) == 3 and is_number(result[2]):
        return Shape.EXTRANONCE2_RESULT
    return NO_SHAPE
