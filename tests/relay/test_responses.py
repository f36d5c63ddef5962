"""The hand-formatted transfer answers are byte for byte what the generic encoder makes of the
documents the draft defines (and fail the same way on text that cannot be UTF-8)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tigress.relay import responses
from tigress.relay.problems import COMPACT_JSON
from tigress.relay.stores.base import DisplayInformation, Payload, Side, StoredMessage

# Any code point, lone surrogates included (they cannot be encoded: both ways must refuse).
any_text = st.text(st.characters(blacklist_categories=()), max_size=40)
seqs = st.integers(min_value=0, max_value=2**53)
# Payload data as stored (base64, no escaping needed) or any text at all.
base64_text = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_=-", max_size=40
)
messages = st.builds(
    StoredMessage,
    seqs,
    st.sampled_from(list(Side)),
    st.builds(Payload, any_text, base64_text | any_text),
)


def _generic(document: dict[str, Any]) -> bytes:
    return COMPACT_JSON.encode(document).encode()


def _outcome(make: Callable[[], bytes]) -> bytes | type[BaseException]:
    try:
        return make()
    except UnicodeEncodeError as exc:
        return type(exc)


def _message(message: StoredMessage) -> dict[str, Any]:
    return {"type": message.payload.type, "data": message.payload.data}


@given(
    display=st.builds(DisplayInformation, any_text, any_text, any_text),
    latest=st.none() | messages,
    expiration=any_text,
    listed=st.none() | st.lists(messages, max_size=4),
)
def test_read_body_matches_the_generic_encoder(
    display: DisplayInformation,
    latest: StoredMessage | None,
    expiration: str,
    listed: list[StoredMessage] | None,
) -> None:
    document: dict[str, Any] = {
        "displayInformation": {
            "title": display.title,
            "description": display.description,
            "imageURL": display.image_url,
        },
        "payload": None if latest is None else _message(latest),
        "expiration": expiration,
        "seq": 0 if latest is None else latest.seq,
    }
    if listed is not None:
        document["messages"] = [{"seq": m.seq, "payload": _message(m)} for m in listed]
    assert _outcome(lambda: responses.read_body(display, latest, expiration, listed)) == (
        _outcome(lambda: _generic(document))
    )


@given(url=any_text, push=st.booleans(), seq=st.none() | seqs)
def test_create_and_update_bodies_match_the_generic_encoder(
    url: str, push: bool, seq: int | None
) -> None:
    created = {"urlLink": url, "isPushNotificationSupported": push}
    assert _outcome(lambda: responses.create_body(url, push)) == _outcome(lambda: _generic(created))
    updated: dict[str, Any] = {"isPushNotificationSupported": push}
    if seq is not None:
        updated["seq"] = seq
    assert responses.update_body(push, seq) == _generic(updated)
    assert _generic({}) == responses.EMPTY_OBJECT


def test_a_typical_read_answer() -> None:
    body = responses.read_body(
        DisplayInformation('Car "key"', "für dich\n", "https://i.example/a.png"),
        StoredMessage(3, Side.INITIATOR, Payload("AEAD_AES_128_GCM", "aGk=")),
        "2026-11-29T10:00:00Z",
        None,
    )
    assert body == (
        b'{"displayInformation":{"title":"Car \\"key\\"","description":"f\xc3\xbcr dich\\n",'
        b'"imageURL":"https://i.example/a.png"},"payload":{"type":"AEAD_AES_128_GCM",'
        b'"data":"aGk="},"expiration":"2026-11-29T10:00:00Z","seq":3}'
    )
