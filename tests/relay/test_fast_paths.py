"""The relay's fast paths compute exactly what the straightforward code they replaced computed."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from tigress.relay.keys import RelayKeys

secrets_ = st.binary(min_size=32, max_size=32)
ids = st.binary(min_size=16, max_size=16)


def _reference(secret: bytes, label: bytes, *parts: bytes) -> bytes:
    return hmac.digest(secret, label + b"".join(parts), hashlib.sha256)


@given(secrets_, ids, ids, ids)
def test_keyed_hashes_are_hmac_sha256_of_label_and_parts(
    secret: bytes, mailbox: bytes, claim: bytes, request_id: bytes
) -> None:
    keys = RelayKeys(secret)
    assert keys.mailbox_key(mailbox) == _reference(secret, b"tigress-relay mailbox\0", mailbox)[:16]
    assert (
        keys.claim_hash(mailbox, claim)
        == _reference(secret, b"tigress-relay claim\0", mailbox, claim)[:16]
    )
    assert (
        keys.create_claim_hash(claim) == _reference(secret, b"tigress-relay create\0", claim)[:16]
    )
    pad = _reference(secret, b"tigress-relay create-seal\0", claim, request_id)
    sealed = keys.seal_mailbox_id(claim, request_id, mailbox)
    assert sealed == bytes(a ^ b for a, b in zip(mailbox, pad, strict=False))
    assert keys.unseal_mailbox_id(claim, request_id, sealed) == mailbox


def test_keys_never_show_key_material() -> None:
    keys = RelayKeys(b"\x01" * 32)
    assert repr(keys) == "RelayKeys()"
    assert "01" not in repr(keys._mailbox)
