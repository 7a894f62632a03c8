"""GetworkDetector: HTTP getwork / getblocktemplate / eth_getWork mining, and its look-alikes."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.detect.base import BinaryChunk, HttpMessage, JsonMessage, Message
from sensor.detect.getwork import GetworkDetector, work_difficulty
from sensor.model import Side
from sensor.rules.model import CoinHints, DialectRule

ETH_WALLET = "0x" + "ab" * 20
CGMINER = {
    "authorization": "Basic " + base64.b64encode(b"Bigsky.rig1:x").decode(),
    "host": "us1.bitminter.com:3333",
    "content-type": "application/json",
    "x-mining-extensions": "longpoll midstate rollntime submitold",
    "user-agent": "cgminer 3.7.2",
}
# A getwork result whose target is difficulty 1 (little-endian 0x00000000ffff0000...).
DIFF1_TARGET_LE = "00" * 26 + "ffff" + "00" * 4
GETWORK_RESULT = (
    '{"id":0,"error":null,"result":{"data":"'
    + "00" * 128
    + '","target":"'
    + DIFF1_TARGET_LE
    + '","midstate":"'
    + "11" * 32
    + '","hash1":"'
    + "00" * 64
    + '"}}'
)


def req(body: str | None, side: Side = Side.ORIG, target: str = "/", **headers: str) -> HttpMessage:
    return HttpMessage(
        side, 1.0, True, "POST", target, None, dict(headers), (body or "").encode(), _json(body)
    )


def resp(
    body: str | None, side: Side = Side.RESP, status: int = 200, **headers: str
) -> HttpMessage:
    return HttpMessage(
        side, 2.0, False, None, None, status, dict(headers), (body or "").encode(), _json(body)
    )


def _json(body: str | None) -> Any:
    if body is None:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


@pytest.fixture
def make(dialect_rules: dict[str, DialectRule], coins: CoinHints):
    def build(*msgs: Message) -> GetworkDetector:
        det = GetworkDetector(dialect_rules["getwork"], coins)
        for msg in msgs:
            if not det.declined:
                det.feed(msg)
        return det

    return build


def test_cgminer_template_request_answered_by_stratum_port_is_suspected(make):
    det = make(
        req(
            '{"id": 0, "method": "getblocktemplate", "params": [{"capabilities": '
            '["coinbasetxn", "workid", "coinbase/append"]}]}',
            **CGMINER,
        ),
        JsonMessage(
            Side.RESP, 2.0, orjson.loads('{"id":0,"result":null,"error":[20,"Parse error",null]}')
        ),
    )
    f = det.finding()
    assert f is not None and not det.declined
    assert f.dialect == "getwork" and f.confidence == "suspected"
    assert f.miner_side is Side.ORIG
    assert f.evidence == ["X-Mining-Extensions", "getblocktemplate"]
    assert (f.login, f.wallet, f.worker) == ("Bigsky.rig1", "Bigsky", "rig1")
    assert f.host == "us1.bitminter.com"
    assert f.agent == "cgminer 3.7.2"
    # cgminer 3.7 mined scrypt coins too: its agent names no coin, and nothing else does
    assert (f.coin, f.algorithm) == (None, None)


@pytest.mark.parametrize(
    ("ask", "work"),
    [
        ('{"method": "getwork", "params": [], "id":0}', GETWORK_RESULT),
        (
            '{ "id" : 0 ,\n "params" : [ ] , "method" : "getwork" }',
            orjson.dumps(dict(reversed(list(orjson.loads(GETWORK_RESULT).items())))).decode(),
        ),
    ],
)
def test_getwork_session_with_submits_is_confirmed(make, ask, work):
    submit = '{"method":"getwork","params":["' + "ab" * 128 + '"],"id":1}'
    det = make(
        req(ask, **CGMINER),
        resp(work),
        req(submit, **CGMINER),
        resp('{"id":1,"error":null,"result":true}'),
        req(submit, **CGMINER),
        resp('{"result":false,"error":null,"id":1}'),
    )
    f = det.finding()
    assert f is not None and f.confidence == "confirmed"
    assert f.difficulty == pytest.approx(1.0)
    assert (f.shares, f.shares_accepted, f.shares_rejected) == (2, 1, 1)
    assert f.evidence == ["X-Mining-Extensions", "getwork"]


def test_reused_id_zero_is_paired_by_http_order(make):
    # cgminer sends id 0 on every call; the HTTP exchange, not the id, pairs the answer.
    det = make(
        req('{"method":"getwork","params":["' + "ab" * 128 + '"],"id":0}', **CGMINER),
        resp('{"id":0,"error":null,"result":true}'),
    )
    f = det.finding()
    assert f is not None and (f.shares, f.shares_accepted) == (1, 1)


def test_pool_side_only_mid_session_is_confirmed_by_pool_headers(make):
    det = make(
        resp(GETWORK_RESULT, side=Side.ORIG, **{"x-long-polling": "/lp", "x-roll-ntime": "Y"}),
    )
    f = det.finding()
    assert f is not None and f.confidence == "confirmed"
    assert f.miner_side is Side.RESP  # the pool is the side that answers
    assert f.evidence == ["X-Long-Polling", "X-Roll-NTime"]
    assert f.difficulty == pytest.approx(1.0)


def test_pool_redirect_header_confirms_even_with_error_body(make):
    body = '{"id":null,"result":null,"error":{"code":0,"message":"use stratum+tcp://"}}'
    det = make(
        req('{"method": "getwork", "params": [], "id":0}', **CGMINER),
        resp(body, **{"x-stratum": "stratum+tcp://pool.example.org:3333"}),
    )
    f = det.finding()
    assert f is not None and f.confidence == "confirmed"
    assert "X-Stratum" in f.evidence


def test_miner_side_only_and_json_rpc_error_stays_suspected(make):
    ask = req('{"method": "getwork", "params": [], "id":0}', **CGMINER)
    only = make(ask)
    assert only.finding() is not None and only.finding().confidence == "suspected"
    refused = make(
        ask,
        resp('{"error": {"message": "Method not found", "code": -32601}, "id": 0, "result": null}'),
    )
    assert refused.finding().confidence == "suspected"


def test_mid_session_response_before_any_request(make):
    # The capture starts with an answer whose request was never seen.
    det = make(
        resp('{"id":7,"error":null,"result":true}'),
        req('{"method":"getwork","params":[],"id":8}', **{"user-agent": "bfgminer/5.2.0"}),
        resp(GETWORK_RESULT),
    )
    f = det.finding()
    assert f is not None and f.confidence == "confirmed" and f.miner_side is Side.ORIG
    assert f.login is None and f.agent == "bfgminer/5.2.0"


def test_ethminer_farm_mode_with_wallet_path(make):
    boundary = "0x" + "00000000ffffffff" + "ff" * 24  # 2^224 - 1: difficulty about 2^32
    det = make(
        req(
            '{"jsonrpc":"2.0","method":"eth_getWork","params":[],"id":1}',
            target=f"/{ETH_WALLET}/rig7",
            host="eth-eu.pool.example:8080",
        ),
        resp(
            '{"jsonrpc":"2.0","id":1,"result":["0x'
            + "12" * 32
            + '","0x'
            + "34" * 32
            + '","'
            + boundary
            + '"]}'
        ),
        req(
            '{"id":2,"jsonrpc":"2.0","method":"eth_submitHashrate","params":["0x1dcd6500","0x'
            + "56" * 32
            + '"]}',
            target=f"/{ETH_WALLET}/rig7",
        ),
        resp('{"jsonrpc":"2.0","id":2,"result":true}'),
        req(
            '{"jsonrpc":"2.0","method":"eth_submitWork","params":["0x'
            + "01" * 8
            + '","0x'
            + "12" * 32
            + '","0x'
            + "78" * 32
            + '"],"id":3}',
            target=f"/{ETH_WALLET}/rig7",
        ),
        resp('{"jsonrpc":"2.0","id":3,"result":true}'),
    )
    f = det.finding()
    assert f is not None and f.confidence == "confirmed"
    assert (f.wallet, f.worker, f.login) == (ETH_WALLET, "rig7", f"{ETH_WALLET}/rig7")
    assert (f.coin, f.algorithm) == ("eth", "ethash")
    assert f.host == "eth-eu.pool.example"
    assert f.reported_hashrate_hs == 500_000_000.0
    assert f.difficulty == pytest.approx(2**32, rel=1e-6)
    assert (f.shares, f.shares_accepted) == (1, 1)
    assert f.evidence == ["eth_getWork", "eth_submitHashrate", "eth_submitWork"]


def test_batch_answers_are_matched_by_id(make):
    det = make(
        req(
            '[{"method":"submitblock","params":["00"],"id":"a"},'
            '{"method":"getblocktemplate","params":[{"rules":["segwit"]}],"id":"b"}]',
            **CGMINER,
        ),
        resp(
            '[{"id":"b","error":null,"result":{"previousblockhash":"00","coinbasevalue":1}},'
            '{"id":"a","error":null,"result":"high-hash"}]'
        ),
    )
    f = det.finding()
    assert f is not None and f.confidence == "confirmed"
    assert (f.shares, f.shares_accepted, f.shares_rejected) == (1, 0, 1)


def test_submitblock_null_result_is_accepted(make):
    det = make(
        req('{"method":"submitblock","params":["00"],"id":1}', **CGMINER),
        resp('{"result":null,"error":null,"id":1}'),
    )
    f = det.finding()
    assert f is not None and (f.shares_accepted, f.shares_rejected) == (1, 0)


def test_hashrate_header_and_ip_host(make):
    headers = dict(CGMINER, host="192.0.2.7:8332", **{"x-mining-hashrate": "123456789"})
    f = make(req('{"method": "getwork", "params": [], "id":0}', **headers)).finding()
    assert f is not None
    assert f.host is None  # an IP literal is not a host name
    assert f.reported_hashrate_hs == 123456789.0
    assert "X-Mining-Hashrate" in f.evidence


def test_bad_basic_auth_is_ignored(make):
    headers = dict(CGMINER, authorization="Basic !!not-base64!!")
    f = make(req('{"method": "getwork", "params": [], "id":0}', **headers)).finding()
    assert f is not None and f.login is None and f.wallet is None


# --- look-alikes: none of these is a miner talking to a pool -----------------------------


def test_pool_asking_its_coin_daemon_is_not_mining(make):
    auth = {"authorization": "Basic dXNlcjpwYXNzd29yZA==", "host": "10.0.0.40:9333"}
    det = make(
        req(
            '{"method":"getblocktemplate","params":[{"capabilities":["coinbasetxn"]}],'
            '"id":1401276010002}',
            **auth,
        ),
        resp(
            '{"result":{"version":2,"previousblockhash":"62","coinbasevalue":5000000000},'
            '"error":null,"id":1401276010002}',
            server="litecoin-json-rpc/v0.8.6.2-beta",
        ),
        req('{"method":"submitblock","params":["00"],"id":5}', **auth),
    )
    assert det.finding() is None
    assert det.declined


@pytest.mark.parametrize(
    "body",
    [
        '{"method":"validateaddress","params":["mk8JqN1kNWju8o3DXEijiJyn7iqkwktAWq"],"id":1}',
        '{"method":"getinfo","params":[],"id":1}',
        '{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}',
        '{"jsonrpc":"2.0","method":"user.login","params":{"user":"bob","password":"x"},"id":1}',
        '{"method":"login","params":{"user":"bob","password":"x"},"id":1}',
        None,
    ],
)
def test_ordinary_json_rpc_and_web_clients_decline(make, body):
    det = make(req(body, **{"user-agent": "Mozilla/5.0", "host": "mdotti.dyndns.org"}))
    assert det.declined and det.finding() is None


def test_app_polling_a_node_for_work_without_miner_evidence(make):
    det = make(
        req(
            '{"jsonrpc":"2.0","method":"eth_getWork","params":[],"id":1}',
            host="127.0.0.1:8545",
            **{"user-agent": "Go-http-client/1.1"},
        ),
        resp(
            '{"jsonrpc":"2.0","id":1,"result":["0x'
            + "12" * 32
            + '","0x'
            + "34" * 32
            + '","0x'
            + "ff" * 32
            + '"]}'
        ),
        req(
            '{"jsonrpc":"2.0","method":"eth_submitWork","params":["0x01","0x02","0x03"],"id":2}',
            host="127.0.0.1:8545",
            **{"user-agent": "Go-http-client/1.1"},
        ),
        resp('{"jsonrpc":"2.0","id":2,"result":true}'),
    )
    assert det.finding() is None


@pytest.mark.parametrize(
    "first",
    [
        JsonMessage(Side.ORIG, 1.0, {"id": 1, "method": "eth_getWork", "params": []}),
        JsonMessage(Side.ORIG, 1.0, {"id": 1, "method": "mining.subscribe", "params": []}),
        BinaryChunk(Side.ORIG, 1.0, b"\x16\x03\x01\x00\x05hello"),
    ],
)
def test_raw_json_lines_and_binary_decline(make, first):
    det = make(first)
    assert det.declined and det.finding() is None


def test_plain_web_page_declines(make):
    page = HttpMessage(Side.ORIG, 1.0, True, "GET", "/index.html", None, {"host": "example.org"})
    det = make(page)
    assert det.declined and det.finding() is None


def test_work_difficulty_shapes():
    assert work_difficulty({"data": "00", "target": DIFF1_TARGET_LE}) == (True, pytest.approx(1.0))
    assert work_difficulty({"coinbasevalue": 1, "target": "00000000ffff" + "00" * 26}) == (
        True,
        pytest.approx(1.0),
    )
    assert work_difficulty(["0x1", "0x2", "0x" + "00" * 32]) == (True, None)  # zero boundary
    assert work_difficulty(["a", "b", "c"]) == (False, None)
    assert work_difficulty({"isvalid": True}) == (False, None)
    assert work_difficulty({"data": "00", "target": "zz"}) == (True, None)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=6,
)
RPC = st.fixed_dictionaries(
    {"id": JSON},
    optional={
        "method": st.sampled_from(
            [
                "getwork",
                "getblocktemplate",
                "submitblock",
                "eth_getWork",
                "eth_submitWork",
                "eth_submitHashrate",
                "login",
            ]
        ),
        "params": JSON,
        "result": JSON,
        "error": JSON,
    },
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.booleans(), RPC | st.lists(RPC, max_size=3) | JSON), max_size=6
    ),
    st.dictionaries(
        st.sampled_from(
            ["user-agent", "host", "authorization", "x-mining-hashrate", "x-stratum", "server"]
        ),
        st.text(max_size=30),
    ),
)
def test_arbitrary_json_bodies_never_raise(dialect_rules, coins, exchanges, headers):
    det = GetworkDetector(dialect_rules["getwork"], coins)
    for is_request, from_orig, body in exchanges:
        side = Side.ORIG if from_orig else Side.RESP
        det.feed(HttpMessage(side, 1.0, is_request, "POST", "/x", 200, headers, b"", body))
    f = det.finding()
    assert f is None or f.dialect == "getwork"
    assert f is None or f.difficulty is None or f.difficulty > 0
