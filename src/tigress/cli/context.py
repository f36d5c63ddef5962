"""The state every command shares: which wallet, how to unlock it, how to print."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import click

from tigress.cli.errors import CliFailure
from tigress.cli.exit_codes import ExitCode
from tigress.cli.output import Output
from tigress.client.flows import VerticalSpecLike
from tigress.client.runner import TransferRunner
from tigress.verticals.registry import VERTICALS
from tigress.wallet import Wallet, WalletLocked, WrongPassphrase
from tigress.wallet.database import DATABASE_NAME

PASSPHRASE_ENV = "TIGRESS_PASSPHRASE"  # noqa: S105 - a variable name, not a secret


@dataclass
class AppContext:
    wallet_dir: Path
    output: Output
    passphrase_env: str | None = None
    interactive: bool = field(default_factory=sys.stdin.isatty)

    @property
    def as_json(self) -> bool:
        return self.output.as_json

    def passphrase(self) -> str | None:
        """From ``--passphrase-env VAR``, else ``TIGRESS_PASSPHRASE``; None when neither is set."""
        if self.passphrase_env is not None:
            value = os.environ.get(self.passphrase_env)
            if value is None:
                raise CliFailure(
                    f"The environment variable {self.passphrase_env} (named by --passphrase-env) "
                    "is not set; set it to the wallet's passphrase.",
                    ExitCode.USAGE,
                )
            return value
        return os.environ.get(PASSPHRASE_ENV) or None

    def open_wallet(self) -> Wallet:
        if not (self.wallet_dir / DATABASE_NAME).is_file():
            raise CliFailure(
                f"No wallet found in {self.wallet_dir}; create one with 'tigress wallet init' "
                "or choose another with --wallet.",
                ExitCode.NOT_FOUND,
            )
        passphrase = self.passphrase()
        try:
            return Wallet.open(self.wallet_dir, passphrase)
        except (WalletLocked, WrongPassphrase) as exc:
            if not self.interactive or self.as_json or (passphrase and self.passphrase_env):
                raise CliFailure(
                    _locked_sentence(exc, self.passphrase_env), ExitCode.WALLET_LOCKED
                ) from None
        entered = click.prompt("Wallet passphrase", hide_input=True, err=True)
        try:
            return Wallet.open(self.wallet_dir, entered)
        except (WalletLocked, WrongPassphrase) as exc:
            raise CliFailure(
                _locked_sentence(exc, self.passphrase_env), ExitCode.WALLET_LOCKED
            ) from None

    @contextlib.contextmanager
    def wallet(self) -> Iterator[Wallet]:
        wallet = self.open_wallet()
        try:
            yield wallet
        finally:
            wallet.close()

    @contextlib.contextmanager
    def runner(
        self, verticals: Mapping[str, VerticalSpecLike] | None = None
    ) -> Iterator[TransferRunner]:
        with self.wallet() as wallet, TransferRunner(wallet, verticals or VERTICALS) as runner:
            yield runner


def _locked_sentence(exc: Exception, passphrase_env: str | None) -> str:
    where = passphrase_env or PASSPHRASE_ENV
    if isinstance(exc, WrongPassphrase):
        return f"The passphrase does not unlock this wallet; check {where} and try again."
    return (
        f"This wallet is protected by a passphrase; set {PASSPHRASE_ENV} (or name a variable with "
        f"--passphrase-env), or run the command in a terminal to be asked."
        if where == PASSPHRASE_ENV
        else f"This wallet is protected by a passphrase; set {where}."
    )


def app(ctx: click.Context) -> AppContext:
    obj = ctx.find_object(AppContext)
    assert obj is not None  # the root group always installs it
    return obj


pass_app = click.make_pass_decorator(AppContext)
