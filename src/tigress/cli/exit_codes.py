"""The CLI's exit codes, defined once (documented in docs/cli.md)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    #: The transfer failed or was cancelled (by either side), or the relay refused the share.
    TRANSFER_FAILED = 1
    #: Wrong command-line usage, or an invitation that is not valid.
    USAGE = 2
    #: The relay (or the hotel's provisioning entity) could not be reached.
    UNREACHABLE = 3
    #: The wallet is protected by a passphrase and none, or a wrong one, was given.
    WALLET_LOCKED = 4
    #: No such wallet, credential or transfer.
    NOT_FOUND = 5
    #: An access point, provisioning entity or relay check refused (door stays shut, untrusted
    #: relay, revoked key, token already redeemed, ...).
    REFUSED = 6
    #: The transfer waits for the PIN (or the PIN given was wrong and attempts remain).
    PIN_NEEDED = 7
    #: A ``--wait`` ran out before the transfer ended; it continues with ``tigress continue``.
    TIMEOUT = 8
    #: The wallet file is damaged, of another version, or already exists where one was created.
    WALLET_ERROR = 9
    #: A bug: something unexpected happened (the message says how to get details).
    INTERNAL = 70
