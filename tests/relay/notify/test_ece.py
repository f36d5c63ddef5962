"""RFC 8291 encryption: byte-exact against the RFC's example, and decryptable by the test's own
independent receiver for arbitrary inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.notify.webpush_receiver import decrypt_push, unb64url
from tigress.relay.notify import ece

VECTORS = json.loads((Path(__file__).parent / "vectors_rfc8291.json").read_text())


def _private(name: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(unb64url(VECTORS[name]), "big"), ec.SECP256R1())


def test_rfc8291_appendix_a_body_is_byte_exact() -> None:
    body = ece.encrypt(
        VECTORS["plaintext"].encode(),
        unb64url(VECTORS["ua_public"]),
        unb64url(VECTORS["auth_secret"]),
        sender_private=_private("as_private"),
        salt=unb64url(VECTORS["salt"]),
        record_size=VECTORS["record_size"],
    )
    assert body[:86] == unb64url(VECTORS["header"])
    assert body[86:] == unb64url(VECTORS["ciphertext"])
    assert body == unb64url(VECTORS["body"])


def test_rfc8291_appendix_a_intermediate_values() -> None:
    sender = _private("as_private")
    as_public = sender.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    assert as_public == unb64url(VECTORS["as_public"])
    keys = ece.derive_keys(
        sender,
        unb64url(VECTORS["ua_public"]),
        unb64url(VECTORS["auth_secret"]),
        unb64url(VECTORS["salt"]),
    )
    assert keys.ecdh_secret == unb64url(VECTORS["ecdh_secret"])
    assert keys.ikm == unb64url(VECTORS["ikm"])
    assert keys.prk == unb64url(VECTORS["prk"])
    assert keys.cek == unb64url(VECTORS["cek"])
    assert keys.nonce == unb64url(VECTORS["nonce"])
    assert ece.KEY_INFO_LABEL + unb64url(VECTORS["ua_public"]) + as_public == unb64url(
        VECTORS["key_info"]
    )
    assert unb64url(VECTORS["cek_info"]) == ece.CEK_INFO
    assert unb64url(VECTORS["nonce_info"]) == ece.NONCE_INFO
    assert "secret" not in repr(keys)
    assert keys.cek.hex() not in repr(keys)


def test_rfc8291_example_decrypts_with_the_receiver_key() -> None:
    plaintext = decrypt_push(
        unb64url(VECTORS["body"]), _private("ua_private"), unb64url(VECTORS["auth_secret"])
    )
    assert plaintext == VECTORS["plaintext"].encode()


@settings(max_examples=40, deadline=None)
@given(plaintext=st.binary(max_size=600), padding=st.integers(0, 300))
def test_fresh_messages_round_trip_through_an_independent_decryptor(
    plaintext: bytes, padding: int
) -> None:
    receiver = ec.generate_private_key(ec.SECP256R1())
    ua_public = receiver.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    auth = b"\x07" * 16
    body = ece.encrypt(plaintext, ua_public, auth, padding=padding)
    assert len(body) == 86 + len(plaintext) + 1 + padding + 16
    assert decrypt_push(body, receiver, auth) == plaintext


def test_each_message_has_a_fresh_salt_and_sender_key() -> None:
    receiver = ec.generate_private_key(ec.SECP256R1())
    ua_public = receiver.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    first = ece.encrypt(b"same", ua_public, bytes(16))
    second = ece.encrypt(b"same", ua_public, bytes(16))
    assert first[:16] != second[:16]
    assert first[21:86] != second[21:86]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"plaintext": b"x" * 3994}, "exceeds"),
        ({"padding": -1}, "padding"),
        ({"auth_secret": bytes(15)}, "auth secret"),
        ({"ua_public": b"\x04" + bytes(63)}, "65-byte"),
        ({"ua_public": b"\x04" + bytes(64)}, "valid P-256"),
        ({"salt": bytes(8)}, "salt"),
        ({"record_size": 20}, "one record"),
    ],
)
def test_encrypt_rejects_bad_inputs(kwargs: dict[str, object], message: str) -> None:
    receiver = ec.generate_private_key(ec.SECP256R1())
    args: dict[str, object] = {
        "plaintext": b"hello",
        "ua_public": receiver.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        ),
        "auth_secret": bytes(16),
    }
    args.update(kwargs)
    with pytest.raises(ece.WebPushEncryptionError, match=message):
        ece.encrypt(**args)  # type: ignore[arg-type]
