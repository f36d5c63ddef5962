"""Every expected failure becomes one sentence and an exit code; never a traceback."""

from __future__ import annotations

import click

from tigress.cli.exit_codes import ExitCode
from tigress.client.errors import RelayError, RelayUnavailable, RelayUntrusted, TransferError
from tigress.verticals.base import VerticalError
from tigress.wallet.api import (
    CredentialNotFound,
    KeyNotFound,
    TransferNotFound,
    WalletCorrupted,
    WalletError,
    WalletLocked,
    WrongPassphrase,
)

#: Short machine names of exit codes, used in ``--json`` error objects.
CODE_NAMES: dict[ExitCode, str] = {code: code.name.lower().replace("_", "-") for code in ExitCode}


class CliFailure(click.ClickException):
    """An expected failure: ``message`` is one sentence saying what happened and what to do."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.code = exit_code


def sentence(text: str) -> str:
    """Capitalise and end with a full stop, as every message the CLI prints."""
    text = text.strip()
    if not text:
        return "Something went wrong."
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


_VERTICAL_ADVICE: dict[str, str] = {
    "token-already-redeemed": "Ask the sender to share the room key again.",
    "token-dead": "Ask the sender to share the room key again.",
    "token-expired": "Ask the sender to share the room key again.",
    "not-owner": "Only the owner's credential can do this.",
    "wrong-access-point": "Check the --at argument.",
    "no-access-point": "Say where with --at.",
}


def classify(exc: BaseException) -> CliFailure | None:
    """The failure to report for a known exception type; None for anything unexpected."""
    if isinstance(exc, CliFailure):
        return exc
    if isinstance(exc, (WalletLocked, WrongPassphrase)):
        return CliFailure(sentence(str(exc)), ExitCode.WALLET_LOCKED)
    if isinstance(exc, (CredentialNotFound, TransferNotFound, KeyNotFound)):
        return CliFailure(sentence(str(exc)), ExitCode.NOT_FOUND)
    if isinstance(exc, WalletCorrupted):
        return CliFailure(sentence(str(exc)), ExitCode.WALLET_ERROR)
    if isinstance(exc, WalletError):
        return CliFailure(sentence(str(exc)), ExitCode.WALLET_ERROR)
    if isinstance(exc, RelayUnavailable):
        return CliFailure(sentence(str(exc)), ExitCode.UNREACHABLE)
    if isinstance(exc, RelayUntrusted):
        return CliFailure(sentence(str(exc)), ExitCode.REFUSED)
    if isinstance(exc, RelayError):
        return CliFailure(sentence(str(exc)), ExitCode.TRANSFER_FAILED)
    if isinstance(exc, TransferError):
        return CliFailure(sentence(str(exc)), ExitCode.TRANSFER_FAILED)
    if isinstance(exc, VerticalError):
        code = ExitCode.UNREACHABLE if exc.code == "entity-unreachable" else ExitCode.REFUSED
        advice = _VERTICAL_ADVICE.get(exc.code, "")
        if exc.code == "entity-unreachable":
            advice = "Check the address and that the hotel's service is running."
        text = sentence(str(exc) or exc.code)
        return CliFailure(f"{text} {advice}".strip(), code)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        reason = exc.strerror or type(exc).__name__
        return CliFailure(
            sentence(f"{reason}{where}; check the path and its permissions"),
            ExitCode.NOT_FOUND if isinstance(exc, FileNotFoundError) else ExitCode.REFUSED,
        )
    return None
