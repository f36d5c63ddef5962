"""Scenario 1: the home key is copied; both copies are the same key and open the same lock.

Flow (one round trip): the sender's opening carries the key; the receiver validates it, stores it
and answers ``done``.  There is no per-copy revocation: :meth:`HomeLock.rotate` revokes all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from tigress.protocol.invitation import Vertical as InvitationHint
from tigress.protocol.messages import ProvisioningInfo
from tigress.verticals.base import Step, UnlockResult, VerticalError
from tigress.verticals.common import (
    ContentError,
    credential_data,
    flow_state,
    flow_state_dict,
    store_credential,
    unexpected,
)
from tigress.verticals.home.credential import HOME_KEY_FORMAT, HomeKey
from tigress.verticals.home.lock import HomeLock, home_response
from tigress.wallet.api import Credential, CredentialOrigin, WalletView

VERTICAL = "home"


def setup_home(wallet: WalletView, lock_path: Path, label: str) -> Credential:
    """Install a new lock at ``lock_path`` and put its owner's key in ``wallet``."""
    lock = HomeLock.create(lock_path, label)
    return _store(
        wallet, HomeKey(lock.lock_id, label, lock.key_for_owner()), CredentialOrigin.OWNED
    )


def rekey_home(wallet: WalletView, credential: Credential, lock_path: Path) -> Credential:
    """Rotate the lock's key (revoking every copy) and update the owner's credential."""
    current = _home_key(credential)
    lock = HomeLock.load(lock_path)
    if lock.lock_id != current.lock_id:
        raise VerticalError("wrong-access-point", "this credential belongs to a different lock")
    new_key = lock.rotate()
    updated = replace(
        credential,
        data=HomeKey(current.lock_id, current.label, new_key).to_content(),
        key_id=None,
        revoked=False,
    )
    wallet.credentials.update(updated)
    return updated


def unlock_home(wallet: WalletView, credential: Credential, access_point: Path) -> UnlockResult:
    """Present the credential to the lock: answer its challenge with the key."""
    del wallet  # the symmetric key is in the credential itself
    key = _home_key(credential)
    lock = HomeLock.load(Path(access_point))
    if lock.lock_id != key.lock_id:
        return UnlockResult(False, "this key belongs to a different lock")
    nonce = lock.challenge()
    if lock.verify(nonce, home_response(key.key, key.lock_id, nonce)):
        return UnlockResult(True, f"{lock.label} unlocked")
    return UnlockResult(False, "the lock refused the key (it was changed since this copy was made)")


class HomeSenderFlow:
    def __init__(self, wallet: WalletView, credential_id: str) -> None:
        credential = wallet.credentials.get(credential_id)
        if credential.vertical != VERTICAL or credential.revoked:
            raise VerticalError(
                "not-shareable", "only a valid home key can be shared as a home key"
            )
        self._credential_id = credential_id
        self._key = _home_key(credential)

    def opening(self) -> ProvisioningInfo:
        return ProvisioningInfo(HOME_KEY_FORMAT, self._key.to_content())

    def on_message(self, info: ProvisioningInfo) -> Step:
        raise unexpected(VERTICAL, info.format)

    def to_dict(self) -> Mapping[str, Any]:
        return flow_state_dict(VERTICAL, "sender", credential_id=self._credential_id)


class HomeReceiverFlow:
    def __init__(self, wallet: WalletView, credential_id: str | None = None) -> None:
        self._wallet = wallet
        self._credential_id = credential_id

    def on_message(self, info: ProvisioningInfo) -> Step:
        if self._credential_id is not None or info.format != HOME_KEY_FORMAT:
            raise unexpected(VERTICAL, info.format)
        key = HomeKey.parse(info.content)
        credential = _store(self._wallet, key, CredentialOrigin.RECEIVED)
        self._credential_id = credential.id
        return Step(finished=True, credential_id=credential.id)

    def to_dict(self) -> Mapping[str, Any]:
        return flow_state_dict(VERTICAL, "receiver", credential_id=self._credential_id)


class HomeSpec:
    name = VERTICAL
    hint = InvitationHint.HOME

    def sender_flow(
        self, wallet: WalletView, credential_id: str, options: Mapping[str, Any]
    ) -> HomeSenderFlow:
        if options:
            raise VerticalError(
                "bad-option", f"a home key takes no options (got {', '.join(options)})"
            )
        return HomeSenderFlow(wallet, credential_id)

    def restore_sender_flow(self, wallet: WalletView, state: Mapping[str, Any]) -> HomeSenderFlow:
        obj = flow_state(state, VERTICAL, "sender", {"credential_id"})
        if not isinstance(obj["credential_id"], str):
            raise ContentError("home sender flow state: credential_id must be a string")
        return HomeSenderFlow(wallet, obj["credential_id"])

    def receiver_flow(self, wallet: WalletView) -> HomeReceiverFlow:
        return HomeReceiverFlow(wallet)

    def restore_receiver_flow(
        self, wallet: WalletView, state: Mapping[str, Any]
    ) -> HomeReceiverFlow:
        obj = flow_state(state, VERTICAL, "receiver", {"credential_id"})
        if obj["credential_id"] is not None and not isinstance(obj["credential_id"], str):
            raise ContentError("home receiver flow state: credential_id must be a string or null")
        return HomeReceiverFlow(wallet, obj["credential_id"])

    def accepts(self, info: ProvisioningInfo) -> bool:
        return info.format == HOME_KEY_FORMAT

    def unlock(
        self, wallet: WalletView, credential: Credential, access_point: str | Path
    ) -> UnlockResult:
        return unlock_home(wallet, credential, Path(access_point))


def _home_key(credential: Credential) -> HomeKey:
    data = credential_data(credential, VERTICAL, HOME_KEY_FORMAT, "home key")
    return HomeKey.parse(data, "stored home key")


def _store(wallet: WalletView, key: HomeKey, origin: CredentialOrigin) -> Credential:
    return store_credential(
        wallet,
        vertical=VERTICAL,
        credential_format=HOME_KEY_FORMAT,
        label=key.label,
        origin=origin,
        data=key.to_content(),
    )
