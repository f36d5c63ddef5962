"""``tigress wallet init|list|show``."""

from __future__ import annotations

import click

from tigress.cli.context import PASSPHRASE_ENV, AppContext, pass_app
from tigress.cli.errors import CliFailure
from tigress.cli.exit_codes import ExitCode
from tigress.cli.output import plain
from tigress.cli.render import credential_details, credential_json, credentials_table
from tigress.wallet import Wallet
from tigress.wallet.database import DATABASE_NAME


@click.group("wallet")
def wallet_group() -> None:
    """Create and inspect this device's wallet."""


@wallet_group.command("init")
@click.option(
    "--passphrase",
    "use_passphrase",
    is_flag=True,
    help=f"Encrypt the wallet with a passphrase (asked for, or from {PASSPHRASE_ENV} / "
    "--passphrase-env).",
)
@pass_app
def init(app: AppContext, use_passphrase: bool) -> None:
    """Create a new wallet in the wallet directory."""
    if (app.wallet_dir / DATABASE_NAME).exists():
        raise CliFailure(
            f"A wallet already exists in {app.wallet_dir}; use it, or choose another "
            "with --wallet.",
            ExitCode.WALLET_ERROR,
        )
    passphrase: str | None = None
    if use_passphrase:
        passphrase = app.passphrase()
        if passphrase is None:
            if not app.interactive:
                raise CliFailure(
                    f"--passphrase needs a passphrase: set {PASSPHRASE_ENV} or run in a terminal.",
                    ExitCode.USAGE,
                )
            passphrase = click.prompt(
                "New passphrase", hide_input=True, confirmation_prompt=True, err=True
            )
    with app.output.waiting("Creating the wallet…"):
        Wallet.create(app.wallet_dir, passphrase).close()
    app.output.say(
        f"[green]Created[/] a wallet in {plain(app.wallet_dir)}"
        + (" (encrypted with your passphrase)." if passphrase else ".")
    )
    app.output.emit(
        {"ok": True, "wallet": str(app.wallet_dir), "passphrase_protected": bool(passphrase)}
    )


@wallet_group.command("list")
@pass_app
def list_credentials(app: AppContext) -> None:
    """List the credentials in the wallet."""
    with app.wallet() as wallet:
        credentials = wallet.credentials.list()
    if not credentials:
        app.output.say(
            "The wallet holds no credentials yet: set one up (tigress home setup, car pair, "
            "hotel check-in) or receive one (tigress receive)."
        )
    else:
        app.output.table(credentials_table(credentials))
    app.output.emit({"ok": True, "credentials": [credential_json(c) for c in credentials]})


@wallet_group.command("show")
@click.argument("credential")
@pass_app
def show(app: AppContext, credential: str) -> None:
    """Show one credential (by id, id prefix or label); its secrets are never printed."""
    with app.wallet() as wallet:
        found = wallet.credentials.find(credential)
    document = credential_json(found)
    document["details"] = credential_details(found)
    out = app.output
    out.say(f"[bold]{plain(found.label)}[/] ({plain(found.id)})")
    for key, value in document.items():
        if key in ("details", "label"):
            continue
        out.say(f"  {key}: {plain(value)}")
    for key, value in document["details"].items():
        if key == "issued":
            out.say(f"  keys issued: {len(value)}")
            for item in value:
                state = "revoked" if item["revoked"] else "valid"
                out.say(
                    f"    serial {plain(item['serial'])}  {plain(item['label'])}  "
                    f"{plain(','.join(item['entitlements']))}  until {plain(item['not_after'])}"
                    f"  [{'red' if item['revoked'] else 'green'}]{state}[/]"
                )
        else:
            shown = ", ".join(value) if isinstance(value, list) else value
            out.say(f"  {key}: {plain(shown)}")
    out.emit({"ok": True, "credential": document})
