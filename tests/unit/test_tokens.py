"""Operator API tokens: format, lookup, constant-time match."""

from __future__ import annotations

import hashlib
import re

import pytest

from chargewarden.security.tokens import new_token, split_lookup, token_matches


def test_new_token_format_lookup_and_hash() -> None:
    token, lookup, token_hash = new_token()
    assert re.fullmatch(r"cw_[A-Za-z0-9_-]{12}_[A-Za-z0-9_-]{43}", token)
    assert token[3:15] == lookup
    assert token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in token_hash and token[16:] not in token_hash
    assert split_lookup(token) == lookup
    assert token_matches(token, token_hash)


def test_tokens_are_unique() -> None:
    tokens = [new_token() for _ in range(200)]
    assert len({t for t, _, _ in tokens}) == 200
    assert len({lookup for _, lookup, _ in tokens}) == 200


def test_token_matches_refuses_other_tokens() -> None:
    token, _, token_hash = new_token()
    other, _, other_hash = new_token()
    assert not token_matches(other, token_hash)
    assert not token_matches(token, other_hash)
    assert not token_matches(token[:-1], token_hash)
    assert not token_matches(token + "x" * 200, token_hash)
    assert not token_matches(token, "")
    assert not token_matches(token, "é" * 64)  # not ASCII: no TypeError from compare_digest
    assert not token_matches(token, token_hash.upper())


def test_split_lookup_uses_fixed_positions_when_parts_contain_underscores() -> None:
    token = "cw_" + "a_b_c_d_e_f_" + "_" + "_" * 43
    assert split_lookup(token) == "a_b_c_d_e_f_"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "cw_",
        "cw_short_secret",
        "xx_" + "a" * 12 + "_" + "b" * 43,
        "cw_" + "a" * 12 + "-" + "b" * 43,
        "cw_" + "a" * 12 + "_" + "b" * 42,
        "cw_" + "a" * 12 + "_" + "b" * 44,
        "cw_" + "a" * 11 + "!_" + "b" * 43,
        "cw_" + "a" * 12 + "_" + "b" * 43 + "\n",
        "Bearer cw_" + "a" * 12 + "_" + "b" * 43,
        "x" * 10_000,
    ],
)
def test_split_lookup_refuses_malformed(token: str) -> None:
    assert split_lookup(token) is None
