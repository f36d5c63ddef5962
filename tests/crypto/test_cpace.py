"""CPace (CPACE-X25519-SHA512): the draft's known answers, the protocol's guarantees, hostile input.

Known answers come from draft-irtf-cfrg-cpace-21 (tests/vectors/cpace/x25519_sha512.json). The
draft has no vectors for the key-confirmation tags, so those are pinned by recomputing them with
the standard library from the ISK the draft does give, and by interoperating with a second
implementation of the same suite and confirmation, the ``cpace`` 0.1.0 package (test-only).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import cpace as second_implementation
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tigress.crypto.cpace import (
    ISK_BYTES,
    MAX_AD_BYTES,
    NEUTRAL_ELEMENT,
    TAG_BYTES,
    CPaceAbort,
    CPaceConfirmationError,
    CPaceError,
    CPaceMessageError,
    CPaceParty,
    CPaceResult,
    CPaceStateError,
    calculate_generator,
    decode_u_coordinate,
    derive_isk,
    generator_string,
    lv_cat,
    map_to_curve_elligator2,
    parse_message,
    prepend_len,
    scalar_mult_vfy,
    transcript_ir,
)
from tigress.crypto.errors import CryptoError

VECTORS_PATH = Path(__file__).resolve().parent.parent / "vectors" / "cpace" / "x25519_sha512.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
GEN = VECTORS["generator"]
EXCHANGE = VECTORS["exchange"]
LOW_ORDER = VECTORS["scalar_mult_vfy_low_order"]

P = 2**255 - 19
A = 486662

# Inputs shaped like tigress's: a 6-digit PIN, a channel label, a Noise handshake hash.
PIN = b"493817"
CI = b"tigress/v1 pin channel"
SID = bytes(range(64))
SCALAR_A = bytes.fromhex("11" * 32)
SCALAR_B = bytes.fromhex("22" * 32)

deterministic = settings(derandomize=True, deadline=None, max_examples=150)


def x(hex_string: str) -> bytes:
    return bytes.fromhex(hex_string)


def vector_party(*, initiator: bool) -> CPaceParty:
    return CPaceParty.start(
        x(GEN["PRS"]),
        ci=x(GEN["CI"]),
        sid=x(GEN["sid"]),
        ad=x(EXCHANGE["ADa"] if initiator else EXCHANGE["ADb"]),
        initiator=initiator,
        scalar=x(EXCHANGE["ya"] if initiator else EXCHANGE["yb"]),
    )


def party(
    *,
    initiator: bool,
    prs: bytes = PIN,
    ci: bytes = CI,
    sid: bytes = SID,
    ad: bytes | None = None,
    scalar: bytes | None = None,
) -> CPaceParty:
    return CPaceParty.start(
        prs,
        ci=ci,
        sid=sid,
        ad=(b"sender" if initiator else b"receiver") if ad is None else ad,
        initiator=initiator,
        scalar=scalar,
    )


def run(initiator: CPaceParty, responder: CPaceParty) -> tuple[CPaceResult, CPaceResult]:
    message_a = initiator.message
    result_b = responder.process(message_a)
    result_a = initiator.process(responder.message)
    return result_a, result_b


def stdlib_tag(sid: bytes, isk: bytes, element: bytes, ad: bytes) -> bytes:
    mac_key = hashlib.sha512(b"CPaceMac" + sid + isk).digest()
    return hmac.new(mac_key, lv_cat(element, ad), hashlib.sha512).digest()


# --- known answers: string utilities (draft A.1, A.3) ------------------------------------------


@pytest.mark.parametrize("case", VECTORS["prepend_len"], ids=lambda case: case["output"][:8])
def test_prepend_len_vectors(case: dict[str, Any]) -> None:
    data = bytes(range(case["input_range"])) if "input_range" in case else x(case["input"])
    assert prepend_len(data).hex() == case["output"]


def test_prepend_len_multi_byte_lengths() -> None:
    assert prepend_len(bytes(300))[:2] == bytes([0xAC, 0x02])
    assert prepend_len(bytes(16384))[:3] == bytes([0x80, 0x80, 0x01])


def test_lv_cat_vector() -> None:
    case = VECTORS["lv_cat"]
    assert lv_cat(*(x(part) for part in case["inputs"])).hex() == case["output"]


@pytest.mark.parametrize("case", VECTORS["transcript_ir"], ids=["first", "second"])
def test_transcript_ir_vectors(case: dict[str, str]) -> None:
    got = transcript_ir(x(case["Ya"]), x(case["ADa"]), x(case["Yb"]), x(case["ADb"]))
    assert got.hex() == case["output"]


# --- known answers: the generator (draft B.1.1) -------------------------------------------------


def test_generator_string_vector() -> None:
    gen_str = generator_string(
        x(GEN["DSI"]), x(GEN["PRS"]), x(GEN["CI"]), x(GEN["sid"]), GEN["s_in_bytes"]
    )
    assert gen_str.hex() == GEN["generator_string"]
    # The zero padding is the third lv_cat field, after DSI (1+8 bytes) and PRS (1+8 bytes).
    assert gen_str[18] == GEN["zpad_length"]
    assert gen_str[19 : 19 + GEN["zpad_length"]] == bytes(GEN["zpad_length"])


def test_generator_hash_and_decoded_field_element() -> None:
    digest = hashlib.sha512(x(GEN["generator_string"])).digest()[:32]
    assert digest.hex() == GEN["hash_generator_string"]
    decoded = decode_u_coordinate(digest)
    assert decoded.to_bytes(32, "little").hex() == GEN["decoded_field_element"]


def test_generator_point_vector() -> None:
    r = decode_u_coordinate(x(GEN["decoded_field_element"]))
    assert map_to_curve_elligator2(r).hex() == GEN["g"]
    assert calculate_generator(x(GEN["PRS"]), x(GEN["CI"]), x(GEN["sid"])).hex() == GEN["g"]


def test_generator_padding_keeps_first_block_full_for_short_pins() -> None:
    for pin in (b"1", b"123456", b"x" * 100):
        gen_str = generator_string(b"CPace255", pin, b"", b"", 128)
        assert len(gen_str) >= 128
    # A PRS longer than the block gets no padding (an empty third field).
    long_pin = b"p" * 200
    gen_str = generator_string(b"CPace255", long_pin, b"", b"", 128)
    assert gen_str == lv_cat(b"CPace255", long_pin, b"", b"", b"")


# --- known answers: messages, K, ISK (draft B.1.2 - B.1.5) --------------------------------------


def test_messages_from_a_and_b() -> None:
    initiator, responder = vector_party(initiator=True), vector_party(initiator=False)
    assert initiator.element.hex() == EXCHANGE["Ya"]
    assert responder.element.hex() == EXCHANGE["Yb"]
    assert initiator.message == lv_cat(x(EXCHANGE["Ya"]), x(EXCHANGE["ADa"]))
    assert responder.message == lv_cat(x(EXCHANGE["Yb"]), x(EXCHANGE["ADb"]))


def test_secret_point_k_both_ways() -> None:
    k = EXCHANGE["K"]
    assert scalar_mult_vfy(x(EXCHANGE["ya"]), x(EXCHANGE["Yb"])).hex() == k
    assert scalar_mult_vfy(x(EXCHANGE["yb"]), x(EXCHANGE["Ya"])).hex() == k


def test_isk_hash_input_and_isk() -> None:
    transcript = transcript_ir(
        x(EXCHANGE["Ya"]), x(EXCHANGE["ADa"]), x(EXCHANGE["Yb"]), x(EXCHANGE["ADb"])
    )
    assert transcript.hex() == EXCHANGE["transcript_ir"]
    hash_input = lv_cat(b"CPace255_ISK", x(GEN["sid"]), x(EXCHANGE["K"])) + transcript
    assert hash_input.hex() == EXCHANGE["isk_hash_input"]
    assert derive_isk(x(GEN["sid"]), x(EXCHANGE["K"]), transcript).hex() == EXCHANGE["ISK_IR"]


def test_full_run_on_vector_inputs_gives_the_draft_isk() -> None:
    result_a, result_b = run(vector_party(initiator=True), vector_party(initiator=False))
    assert result_a.isk.hex() == EXCHANGE["ISK_IR"]
    assert result_b.isk.hex() == EXCHANGE["ISK_IR"]
    assert result_a.peer_ad == x(EXCHANGE["ADb"])
    assert result_b.peer_ad == x(EXCHANGE["ADa"])


def test_confirmation_tags_on_vector_inputs() -> None:
    """No draft vectors: pin Ta/Tb to section 10.4's construction computed with the stdlib."""
    sid, isk = x(GEN["sid"]), x(EXCHANGE["ISK_IR"])
    expected_ta = stdlib_tag(sid, isk, x(EXCHANGE["Ya"]), x(EXCHANGE["ADa"]))
    expected_tb = stdlib_tag(sid, isk, x(EXCHANGE["Yb"]), x(EXCHANGE["ADb"]))
    result_a, result_b = run(vector_party(initiator=True), vector_party(initiator=False))
    assert result_a.own_confirmation == expected_ta
    assert result_b.own_confirmation == expected_tb
    assert len(expected_ta) == TAG_BYTES
    result_a.verify_peer_confirmation(expected_tb)
    result_b.verify_peer_confirmation(expected_ta)


# --- known answers: low-order points (draft B.1.10) ----------------------------------------------


@pytest.mark.parametrize("case", LOW_ORDER["cases"], ids=lambda case: case["name"])
def test_scalar_mult_vfy_low_order_vectors(case: dict[str, Any]) -> None:
    assert scalar_mult_vfy(x(LOW_ORDER["s"]), x(case["u"])).hex() == case["q"]


@pytest.mark.parametrize("case", LOW_ORDER["cases"], ids=lambda case: case["name"])
def test_low_order_points_in_a_message_abort(case: dict[str, Any]) -> None:
    for initiator in (True, False):
        receiver = party(initiator=initiator, scalar=x(LOW_ORDER["s"]))
        hostile = lv_cat(x(case["u"]), b"peer")
        if case["must_abort"]:
            with pytest.raises(CPaceAbort, match="low-order"):
                receiver.process(hostile)
        else:
            # Non-canonical encodings of ordinary points: the draft expects a normal result.
            assert len(receiver.process(hostile).isk) == ISK_BYTES


def test_neutral_element_message_aborts() -> None:
    with pytest.raises(CPaceAbort):
        party(initiator=False).process(lv_cat(NEUTRAL_ELEMENT, b"sender"))


# --- protocol properties ----------------------------------------------------------------------


def test_same_pin_same_isk_and_confirmations_verify() -> None:
    result_a, result_b = run(party(initiator=True), party(initiator=False))
    assert hmac.compare_digest(result_a.isk, result_b.isk)
    assert len(result_a.isk) == ISK_BYTES
    assert result_a.own_confirmation != result_b.own_confirmation
    result_a.verify_peer_confirmation(result_b.own_confirmation)
    result_b.verify_peer_confirmation(result_a.own_confirmation)


def test_fresh_scalars_give_fresh_messages_and_keys() -> None:
    first_a, _ = run(party(initiator=True), party(initiator=False))
    second_a, _ = run(party(initiator=True), party(initiator=False))
    assert first_a.isk != second_a.isk


def _assert_mismatch(result_a: CPaceResult, result_b: CPaceResult) -> None:
    assert result_a.isk != result_b.isk
    with pytest.raises(CPaceConfirmationError):
        result_a.verify_peer_confirmation(result_b.own_confirmation)
    with pytest.raises(CPaceConfirmationError):
        result_b.verify_peer_confirmation(result_a.own_confirmation)


def test_different_pin_mismatches_and_confirmation_fails() -> None:
    _assert_mismatch(*run(party(initiator=True), party(initiator=False, prs=b"493818")))


def test_different_sid_mismatches() -> None:
    _assert_mismatch(*run(party(initiator=True), party(initiator=False, sid=SID[::-1])))


def test_different_ci_mismatches() -> None:
    _assert_mismatch(*run(party(initiator=True), party(initiator=False, ci=b"another channel")))


def test_both_claiming_the_same_role_mismatches() -> None:
    first = party(initiator=True, scalar=SCALAR_A)
    second = party(initiator=True, ad=b"receiver", scalar=SCALAR_B)
    _assert_mismatch(*run(first, second))


def test_associated_data_altered_in_transit_mismatches() -> None:
    initiator, responder = party(initiator=True), party(initiator=False)
    result_b = responder.process(lv_cat(initiator.element, b"mallory"))
    result_a = initiator.process(responder.message)
    assert result_b.peer_ad == b"mallory"
    _assert_mismatch(result_a, result_b)


def test_reflected_own_message_aborts() -> None:
    initiator = party(initiator=True)
    with pytest.raises(CPaceAbort, match="our own"):
        initiator.process(initiator.message)


def test_reflected_element_with_other_ad_aborts() -> None:
    responder = party(initiator=False)
    with pytest.raises(CPaceAbort, match="our own"):
        responder.process(lv_cat(responder.element, b"sender"))


def test_a_party_processes_one_message_only() -> None:
    initiator, responder = party(initiator=True), party(initiator=False)
    initiator.process(responder.message)
    with pytest.raises(CPaceStateError):
        initiator.process(responder.message)
    with pytest.raises(CPaceStateError):
        initiator.to_dict()


def test_a_rejected_message_also_spends_the_party() -> None:
    responder = party(initiator=False)
    with pytest.raises(CPaceMessageError):
        responder.process(b"garbage")
    with pytest.raises(CPaceStateError):
        responder.process(party(initiator=True).message)


@pytest.mark.parametrize(
    "tag",
    [b"", b"\x00" * TAG_BYTES, b"\x00" * (TAG_BYTES + 1), "not bytes", None],
    ids=["empty", "zeros", "too-long", "str", "none"],
)
def test_wrong_confirmation_tags_are_rejected(tag: object) -> None:
    result_a, _ = run(party(initiator=True), party(initiator=False))
    with pytest.raises(CPaceConfirmationError):
        result_a.verify_peer_confirmation(tag)  # type: ignore[arg-type]


def test_own_tag_is_not_accepted_as_the_peers() -> None:
    result_a, _ = run(party(initiator=True), party(initiator=False))
    with pytest.raises(CPaceConfirmationError):
        result_a.verify_peer_confirmation(result_a.own_confirmation)


def test_secrets_stay_out_of_repr() -> None:
    initiator, responder = party(initiator=True), party(initiator=False)
    scalar_hex = initiator.scalar.hex()
    assert scalar_hex not in repr(initiator)
    assert repr(initiator.scalar) not in repr(initiator)
    result_a, _ = run(initiator, responder)
    assert repr(result_a.isk) not in repr(result_a)
    assert result_a.isk.hex() not in repr(result_a)


# --- persistence between rounds ---------------------------------------------------------------


def test_to_dict_from_dict_round_trip_mid_run() -> None:
    initiator = party(initiator=True)
    saved = json.loads(json.dumps(initiator.to_dict()))  # survives a JSON store
    responder = party(initiator=False)
    result_b = responder.process(initiator.message)
    restored = CPaceParty.from_dict(saved)
    assert restored.message == initiator.message
    result_restored = restored.process(responder.message)
    result_original = initiator.process(responder.message)
    assert result_restored.isk == result_original.isk == result_b.isk
    assert result_restored.own_confirmation == result_original.own_confirmation
    result_b.verify_peer_confirmation(result_restored.own_confirmation)
    result_restored.verify_peer_confirmation(result_b.own_confirmation)


def test_to_dict_holds_no_pin() -> None:
    state = party(initiator=False, prs=b"271828").to_dict()
    serialised = json.dumps(state)
    assert b"271828".hex() not in serialised
    assert "271828" not in serialised
    assert state["role"] == "responder"


def _valid_state() -> dict[str, object]:
    return party(initiator=True, scalar=SCALAR_A).to_dict()


def _mutated(**changes: object) -> dict[str, object]:
    state = _valid_state()
    for key, value in changes.items():
        if value is KeyError:
            del state[key]
        else:
            state[key] = value
    return state


@pytest.mark.parametrize(
    "state",
    [
        _mutated(suite="CPACE-X448-SHAKE256"),
        _mutated(version=2),
        _mutated(version=True),
        _mutated(version="1"),
        _mutated(role="observer"),
        _mutated(sid=""),
        _mutated(sid="00 11"),
        _mutated(sid="0G"),
        _mutated(sid="ABCD"),
        _mutated(sid="abc"),
        _mutated(sid=17),
        _mutated(ad="00" * (MAX_AD_BYTES + 1)),
        _mutated(element="00" * 31),
        _mutated(element="00" * 32),
        _mutated(scalar="11" * 33),
        _mutated(scalar=None),
        _mutated(scalar=KeyError),
        _mutated(extra="field"),
    ],
    ids=[
        "suite",
        "version-2",
        "version-bool",
        "version-str",
        "role",
        "sid-empty",
        "sid-space",
        "sid-nonhex",
        "sid-uppercase",
        "sid-odd",
        "sid-int",
        "ad-too-long",
        "element-short",
        "element-neutral",
        "scalar-long",
        "scalar-none",
        "scalar-missing",
        "extra-key",
    ],
)
def test_from_dict_rejects_malformed_state(state: dict[str, object]) -> None:
    with pytest.raises(CPaceStateError):
        CPaceParty.from_dict(state)


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(CPaceStateError):
        CPaceParty.from_dict(["not", "a", "mapping"])  # type: ignore[arg-type]


# --- local argument checks --------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"prs": b""},
        {"prs": "123456"},
        {"prs": b"1" * 1025},
        {"ci": "channel"},
        {"ci": b"c" * 4097},
        {"sid": b""},
        {"sid": b"s" * 1025},
        {"ad": b"a" * (MAX_AD_BYTES + 1)},
        {"ad": None},
        {"scalar": b"\x01" * 31},
        {"scalar": bytearray(32)},
        {"initiator": 1},
    ],
    ids=lambda changes: next(iter(changes)),
)
def test_start_rejects_bad_arguments(changes: dict[str, object]) -> None:
    arguments: dict[str, object] = {
        "prs": PIN,
        "ci": CI,
        "sid": SID,
        "ad": b"sender",
        "initiator": True,
        "scalar": None,
    }
    arguments.update(changes)
    prs = arguments.pop("prs")
    with pytest.raises(CPaceError):
        CPaceParty.start(prs, **arguments)  # type: ignore[arg-type]


def test_errors_are_crypto_errors() -> None:
    for error in (CPaceAbort, CPaceMessageError, CPaceConfirmationError, CPaceStateError):
        assert issubclass(error, CPaceError)
    assert issubclass(CPaceMessageError, CPaceAbort)
    assert issubclass(CPaceError, CryptoError)


# --- hostile peer messages --------------------------------------------------------------------


ELEMENT = bytes(range(1, 33))


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"", "truncated inside a length prefix"),
        (b"\x20" + ELEMENT[:31], "truncated inside the element"),
        (b"\x20" + ELEMENT, "truncated inside a length prefix"),
        (b"\x1f" + ELEMENT[:31] + b"\x00", "element must be 32 bytes"),
        (b"\x21" + ELEMENT + b"\x00\x00", "element must be 32 bytes"),
        (b"\xa0\x00" + ELEMENT + b"\x00", "not minimally encoded"),
        (b"\x20" + ELEMENT + b"\x83\x00abc", "not minimally encoded"),
        (b"\x20" + ELEMENT + b"\x80\x80\x01", "too long"),
        (b"\x20" + ELEMENT + b"\x03ab", "should be 3 bytes"),
        (b"\x20" + ELEMENT + b"\x01ab", "should be 1 bytes"),
        (b"\x20" + ELEMENT + b"\x89\x08", "exceeds"),
        (b"\x20" + ELEMENT + b"\x00" + bytes(MAX_AD_BYTES + 10), "too long"),
    ],
    ids=[
        "empty",
        "short-element",
        "no-ad-length",
        "element-31",
        "element-33",
        "element-length-non-minimal",
        "ad-length-non-minimal",
        "ad-length-three-bytes",
        "ad-short",
        "ad-trailing",
        "ad-over-limit",
        "oversized",
    ],
)
def test_malformed_messages_are_rejected_precisely(message: bytes, reason: str) -> None:
    with pytest.raises(CPaceMessageError, match=reason):
        parse_message(message)
    with pytest.raises(CPaceMessageError, match=reason):
        party(initiator=False).process(message)


@pytest.mark.parametrize("message", ["text", None, bytearray(34), memoryview(bytes(34))])
def test_non_bytes_messages_are_rejected(message: object) -> None:
    with pytest.raises(CPaceMessageError, match="is bytes"):
        party(initiator=True).process(message)  # type: ignore[arg-type]


def test_parse_accepts_maximal_ad() -> None:
    ad = bytes(range(256)) * 4
    assert len(ad) == MAX_AD_BYTES
    assert parse_message(lv_cat(ELEMENT, ad)) == (ELEMENT, ad)


@deterministic
@given(st.binary(max_size=1200))
def test_arbitrary_bytes_raise_only_cpace_errors(message: bytes) -> None:
    receiver = party(initiator=False, scalar=SCALAR_B)
    try:
        result = receiver.process(message)
    except CPaceError:
        return
    assert len(result.isk) == ISK_BYTES


@deterministic
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=64))
def test_well_formed_messages_with_arbitrary_elements(element: bytes, ad: bytes) -> None:
    receiver = party(initiator=True, scalar=SCALAR_A)
    try:
        result = receiver.process(lv_cat(element, ad))
    except CPaceAbort:
        return
    assert result.peer_ad == ad
    assert len(result.own_confirmation) == TAG_BYTES


@deterministic
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=MAX_AD_BYTES))
def test_parse_message_round_trips(element: bytes, ad: bytes) -> None:
    assert parse_message(lv_cat(element, ad)) == (element, ad)


@deterministic
@given(st.integers(min_value=0, max_value=2**255 - 1))
def test_elligator2_lands_on_curve25519(r: int) -> None:
    u = int.from_bytes(map_to_curve_elligator2(r), "little")
    assert u < P
    rhs = (u * u * u + A * u * u + u) % P
    # u is on the curve exactly when u^3 + A u^2 + u is a square (or zero) modulo p.
    assert pow(rhs, (P - 1) // 2, P) in (0, 1)


@deterministic
@given(
    st.binary(min_size=1, max_size=64), st.binary(max_size=64), st.binary(min_size=1, max_size=64)
)
def test_runs_agree_for_any_inputs(prs: bytes, ci: bytes, sid: bytes) -> None:
    result_a, result_b = run(
        party(initiator=True, prs=prs, ci=ci, sid=sid),
        party(initiator=False, prs=prs, ci=ci, sid=sid),
    )
    assert result_a.isk == result_b.isk
    result_a.verify_peer_confirmation(result_b.own_confirmation)


# --- interoperability with a second implementation (cpace 0.1.0, test-only) -------------------

Role = second_implementation.CPaceRole


def their_party(*, initiator: bool, prs: bytes = PIN, ad: bytes) -> second_implementation.CPace:
    role = Role.INITIATOR if initiator else Role.RESPONDER
    return second_implementation.CPace.start(role=role, prs=prs, sid=SID, ci=CI, ad=ad)


@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "they-initiate"])
def test_interop_same_pin(we_initiate: bool) -> None:
    ours = party(initiator=we_initiate)
    theirs = their_party(initiator=not we_initiate, ad=b"peer")
    theirs.derive(ours.element, ours.ad)
    result = ours.process(lv_cat(theirs.public_share, b"peer"))
    assert hmac.compare_digest(result.isk, theirs.isk)
    result.verify_peer_confirmation(theirs.tag())
    assert theirs.verify(result.own_confirmation)


@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "they-initiate"])
def test_interop_wrong_pin(we_initiate: bool) -> None:
    ours = party(initiator=we_initiate)
    theirs = their_party(initiator=not we_initiate, prs=b"000000", ad=b"peer")
    theirs.derive(ours.element, ours.ad)
    result = ours.process(lv_cat(theirs.public_share, b"peer"))
    assert result.isk != theirs.isk
    with pytest.raises(CPaceConfirmationError):
        result.verify_peer_confirmation(theirs.tag())
    assert not theirs.verify(result.own_confirmation)


def test_interop_tags_on_draft_vector_inputs() -> None:
    """The second implementation, fed the draft's scalars, yields our Ta and Tb byte for byte."""
    ours_a, ours_b = vector_party(initiator=True), vector_party(initiator=False)
    theirs_a = second_implementation.CPace(
        role=Role.INITIATOR,
        sid=x(GEN["sid"]),
        ad=x(EXCHANGE["ADa"]),
        scalar=x(EXCHANGE["ya"]),
        public_share=x(EXCHANGE["Ya"]),
    )
    theirs_a.derive(x(EXCHANGE["Yb"]), x(EXCHANGE["ADb"]))
    result_a, result_b = run(ours_a, ours_b)
    assert theirs_a.isk.hex() == EXCHANGE["ISK_IR"]
    assert theirs_a.tag() == result_a.own_confirmation
    assert theirs_a.verify(result_b.own_confirmation)


@settings(derandomize=True, deadline=None, max_examples=40)
@given(
    st.binary(min_size=1, max_size=32),
    st.binary(max_size=32),
    st.binary(min_size=1, max_size=64),
    st.binary(max_size=16),
    st.binary(max_size=16),
)
def test_interop_generators_and_keys_agree(
    prs: bytes, ci: bytes, sid: bytes, ad_a: bytes, ad_b: bytes
) -> None:
    ours = CPaceParty.start(prs, ci=ci, sid=sid, ad=ad_a, initiator=True, scalar=SCALAR_A)
    theirs = second_implementation.CPace.start(
        role=Role.RESPONDER, prs=prs, sid=sid, ci=ci, ad=ad_b
    )
    theirs.derive(ours.element, ad_a)
    result = ours.process(lv_cat(theirs.public_share, ad_b))
    assert result.isk == theirs.isk
    result.verify_peer_confirmation(theirs.tag())
    assert theirs.verify(result.own_confirmation)
