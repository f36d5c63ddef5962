"""Transfers: ``share``, ``receive``, ``transfers``, ``continue``, ``cancel``."""

from __future__ import annotations

import os
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from tigress.cli.context import AppContext, pass_app
from tigress.cli.errors import CliFailure, sentence
from tigress.cli.exit_codes import ExitCode
from tigress.cli.output import plain
from tigress.cli.params import DURATION, HOST_PORT, CommaList
from tigress.cli.render import credential_json, status_text, transfer_json, transfers_table
from tigress.client.errors import TransferError
from tigress.client.runner import DirectOptions, TransferRunner
from tigress.protocol.errors import ProtocolError
from tigress.protocol.invitation import DirectInvitation, parse_invitation
from tigress.protocol.messages import CancelReason
from tigress.protocol.qr import qr_png, qr_svg, qr_terminal
from tigress.verticals.car.certificates import ENTITLEMENTS
from tigress.wallet import TransferRecord, TransferStatus, Wallet

RELAY_ENV = "TIGRESS_RELAY"
GENERATE = "\x00generate"  # the flag value of a bare --pin / --wait
DEFAULT_SHARE_WAIT = timedelta(minutes=10)
DEFAULT_DIRECT_RECEIVE_WAIT = timedelta(minutes=2)
HOTEL_RIGHTS = frozenset({"enter", "share"})


def generate_pin() -> str:
    """Six random digits from ``secrets`` (never ``random``)."""
    return f"{secrets.randbelow(1_000_000):06d}"


def exit_code_for(record: TransferRecord, *, waited: bool) -> ExitCode:
    if record.status in (TransferStatus.FAILED, TransferStatus.CANCELLED):
        return ExitCode.TRANSFER_FAILED
    if record.status == TransferStatus.WAITING_FOR_PIN:
        return ExitCode.PIN_NEEDED
    if record.status == TransferStatus.PENDING and waited:
        return ExitCode.TIMEOUT
    return ExitCode.OK


def next_step(record: TransferRecord) -> str:
    """What the person should do about a transfer in this state."""
    if record.status == TransferStatus.PENDING:
        who = "the receiver" if record.role == "sender" else "the sender"
        return (
            f"Waiting for {who}; run 'tigress continue' later (or add --wait) to go on."
            if record.transport == "relay"
            else f"Waiting for {who}."
        )
    if record.status == TransferStatus.WAITING_FOR_PIN:
        return f"Give the PIN: tigress continue {record.id} --pin <PIN>"
    return ""


def report(app: AppContext, wallet: Wallet, record: TransferRecord, *, waited: bool) -> None:
    """Print the state of one transfer, emit its JSON, and exit with its code."""
    out = app.output
    out.say(f"Transfer {plain(record.id)} ({plain(record.vertical or '?')}): {status_text(record)}")
    if record.detail:
        out.say(f"  {plain(sentence(record.detail))}")
    document: dict[str, Any] = {"transfer": transfer_json(record)}
    if record.status == TransferStatus.FINISHED and record.role == "receiver":
        credential = wallet.credentials.get(record.result_credential_id or "")
        out.say(
            f"[green]Received[/] [bold]{plain(credential.label)}[/] as {plain(credential.id)}; "
            f"open it with: tigress unlock {plain(credential.id)} --at …"
        )
        document["credential"] = credential_json(credential)
    hint = next_step(record)
    if hint:
        out.say(f"  {plain(hint)}")
    code = exit_code_for(record, waited=waited)
    document["ok"] = code == ExitCode.OK
    document["exit_code"] = int(code)
    out.emit(document)
    if code != ExitCode.OK:
        raise click.exceptions.Exit(int(code))


def wait_for(
    app: AppContext, runner: TransferRunner, transfer_id: str, seconds: float, message: str
) -> TransferRecord:
    """Advance until the transfer ends, needs a PIN, or ``seconds`` pass (a spinner meanwhile)."""
    with app.output.waiting(message):
        return runner.complete(transfer_id, timeout=seconds)


def _share_options(  # noqa: PLR0917
    vertical: str,
    entitlements: list[str] | None,
    valid_for: timedelta | None,
    key_label: str | None,
    rights: list[str] | None,
    token_ttl: timedelta | None,
) -> dict[str, Any]:
    car = {"entitlements": entitlements, "valid_for": valid_for, "key_label": key_label}
    hotel = {"rights": rights, "token_ttl": token_ttl}
    given_car = [f"--{k.replace('_', '-')}" for k, v in car.items() if v is not None]
    given_hotel = [f"--{k.replace('_', '-')}" for k, v in hotel.items() if v is not None]
    misplaced = (given_car if vertical != "car" else []) + (
        given_hotel if vertical != "hotel" else []
    )
    if misplaced:
        raise CliFailure(
            f"{', '.join(misplaced)} does not apply to a {vertical} credential; leave it out.",
            ExitCode.USAGE,
        )
    options: dict[str, Any] = {}
    if entitlements is not None:
        options["entitlements"] = entitlements
    if valid_for is not None:
        options["valid_for"] = int(valid_for.total_seconds())
    if key_label is not None:
        options["label"] = key_label
    if rights is not None:
        options["rights"] = rights
    if token_ttl is not None:
        options["ttl"] = int(token_ttl.total_seconds())
    return options


def _write_qr(kind: str, url: str, qr_out: Path | None) -> str | None:
    """Write a PNG/SVG QR code to ``qr_out``; returns the path written."""
    if kind not in ("png", "svg"):
        return None
    if qr_out is None:
        raise CliFailure(f"--qr {kind} needs --qr-out FILE to write the image to.", ExitCode.USAGE)
    data = qr_png(url) if kind == "png" else qr_svg(url).encode("utf-8")
    # The image holds the invitation's secret: readable by this user only.
    descriptor = os.open(qr_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return str(qr_out)


@click.command("share")
@click.argument("credential")
@click.option("--relay", "relay_url", help=f"Relay to use (default: ${RELAY_ENV}).")
@click.option("--direct", is_flag=True, help="No relay: listen for the receiver on this machine.")
@click.option(
    "--listen",
    type=HOST_PORT,
    default=None,
    help="With --direct: where to listen (default 127.0.0.1:0, any free port).",
)
@click.option("--advertise", help="With --direct: the host written into the invitation.")
@click.option(
    "--pin",
    is_flag=False,
    flag_value=GENERATE,
    default=None,
    help="Protect the share with a PIN; without a value a 6-digit PIN is generated.",
)
@click.option("--pin-attempts", type=click.IntRange(1, 10), default=3, show_default=True)
@click.option("--expires", type=DURATION, default="48h", show_default=True)
@click.option(
    "--qr",
    type=click.Choice(["terminal", "png", "svg", "none"]),
    default="terminal",
    show_default=True,
)
@click.option("--qr-out", type=click.Path(dir_okay=False, path_type=Path), help="QR image file.")
@click.option(
    "--wait",
    is_flag=False,
    flag_value="10m",
    type=DURATION,
    default=None,
    help="Stay until the transfer completes (bare --wait: up to 10 minutes).",
)
@click.option(
    "--entitlements",
    type=CommaList(frozenset(ENTITLEMENTS)),
    help="Car: unlock, or unlock,drive (default unlock).",
)
@click.option("--valid-for", type=DURATION, help="Car: how long the friend's key works (48h).")
@click.option("--key-label", help="Car: a name for the friend's key.")
@click.option(
    "--rights", type=CommaList(HOTEL_RIGHTS), help="Hotel: enter, or enter,share (default enter)."
)
@click.option("--token-ttl", type=DURATION, help="Hotel: lifetime of the share token (10m).")
@pass_app
def share(  # noqa: PLR0917 - one parameter per option
    app: AppContext,
    credential: str,
    relay_url: str | None,
    direct: bool,
    listen: tuple[str, int] | None,
    advertise: str | None,
    pin: str | None,
    pin_attempts: int,
    expires: timedelta,
    qr: str,
    qr_out: Path | None,
    wait: timedelta | None,
    entitlements: list[str] | None,
    valid_for: timedelta | None,
    key_label: str | None,
    rights: list[str] | None,
    token_ttl: timedelta | None,
) -> None:
    """Share CREDENTIAL: prints the invitation link (and QR code) to send to the receiver."""
    if direct and relay_url:
        raise CliFailure("Choose --relay URL or --direct, not both.", ExitCode.USAGE)
    if not direct:
        relay_url = relay_url or os.environ.get(RELAY_ENV)
        if not relay_url:
            raise CliFailure(
                f"Say how to reach the receiver: --relay URL (or set {RELAY_ENV}) or --direct.",
                ExitCode.USAGE,
            )
    elif listen is None:
        listen = ("127.0.0.1", 0)
    if (listen is not None or advertise) and not direct:
        raise CliFailure("--listen and --advertise go with --direct.", ExitCode.USAGE)
    if pin == GENERATE:
        pin = generate_pin()
    elif pin is not None and not (4 <= len(pin) <= 64 and pin.isprintable()):
        raise CliFailure("A PIN has 4 to 64 printable characters.", ExitCode.USAGE)
    out = app.output
    with app.runner() as runner:
        found = runner.wallet.credentials.find(credential)
        options = _share_options(
            found.vertical, entitlements, valid_for, key_label, rights, token_ttl
        )
        with out.waiting("Creating the share…"):
            result = runner.share(
                found.id,
                found.vertical,
                relay_url=None if direct else relay_url,
                direct=DirectOptions(listen[0], listen[1], advertise)
                if direct and listen
                else None,
                pin=pin,
                pin_attempts=pin_attempts,
                expires=expires,
                options=options,
            )
        url = result.invitation_url
        record = result.record
        out.say(f"Sharing [bold]{plain(found.label)}[/] (transfer {plain(record.id)}).")
        out.say("Send this invitation to the receiver (it contains the key to the share):")
        out.raw(url)
        if qr == "terminal" and not app.as_json:
            out.raw(qr_terminal(url))
        qr_file = _write_qr(qr, url, qr_out)
        if qr_file:
            out.say(f"QR code written to {plain(qr_file)}.")
        if pin is not None:
            out.say(
                f"PIN: [bold]{plain(pin)}[/] — give it to the receiver over another channel "
                "(a call, in person), not with the link."
            )
        document: dict[str, Any] = {
            "invitation": url,
            "pin": pin,
            "qr_file": qr_file,
            "transfer": transfer_json(record),
        }
        if app.as_json and (direct or wait is not None):
            # Scripts need the link while this command keeps running.
            out.emit({"event": "shared", **document})
        waited = False
        if direct:
            limit = (wait or expires).total_seconds()
            record = wait_for(app, runner, record.id, limit, "Waiting for the receiver to connect…")
            waited = True
        elif wait is not None:
            record = wait_for(
                app, runner, record.id, wait.total_seconds(), "Waiting for the receiver…"
            )
            waited = True
        if waited:
            report(app, runner.wallet, record, waited=True)
            return
        out.say(
            "The receiver can accept it now or later; run 'tigress continue' to carry on "
            "when they have answered."
            if record.transport == "relay"
            else ""
        )
        out.emit({"ok": True, "exit_code": 0, **document})


@click.command("receive")
@click.argument("invitation")
@click.option("--pin", help="The PIN the sender gave you, if the share has one.")
@click.option(
    "--wait",
    type=DURATION,
    default=None,
    help="Wait up to this long for the transfer to finish (default: do what can be done now).",
)
@pass_app
def receive(app: AppContext, invitation: str, pin: str | None, wait: timedelta | None) -> None:
    """Accept an invitation link and receive the credential."""
    try:
        parsed = parse_invitation(invitation.strip())
    except ProtocolError as exc:
        raise CliFailure(
            f"That invitation is not valid ({exc}); copy the whole link, including the part "
            "after '#'.",
            ExitCode.USAGE,
        ) from None
    if parsed.secret is None:
        raise CliFailure(
            "The invitation has no secret (the part after '#' is missing); copy the whole link.",
            ExitCode.USAGE,
        )
    is_direct = isinstance(parsed, DirectInvitation)
    if wait is None and is_direct:
        wait = DEFAULT_DIRECT_RECEIVE_WAIT  # a direct transfer lives only while both run
    out = app.output
    with app.runner() as runner:
        try:
            with out.waiting("Contacting the sender's share…"):
                record = runner.receive(invitation.strip(), pin=pin)
        except TransferError as exc:
            if is_direct:
                raise CliFailure(
                    f"{sentence(str(exc))} Check that the sender's 'tigress share --direct' "
                    "is still running.",
                    ExitCode.UNREACHABLE,
                ) from None
            raise
        record = _maybe_ask_pin(app, runner, record)
        if wait is not None and record.status == TransferStatus.PENDING:
            record = wait_for(app, runner, record.id, wait.total_seconds(), "Receiving…")
            record = _maybe_ask_pin(app, runner, record)
        report(app, runner.wallet, record, waited=wait is not None)


def _maybe_ask_pin(
    app: AppContext, runner: TransferRunner, record: TransferRecord
) -> TransferRecord:
    """In a terminal, ask for the PIN while the transfer wants one."""
    while record.status == TransferStatus.WAITING_FOR_PIN and app.interactive and not app.as_json:
        app.output.say(plain(sentence(record.detail)))
        entered = click.prompt("PIN", hide_input=False, err=True, default="", show_default=False)
        if not entered:
            break
        with app.output.waiting("Checking the PIN…"):
            record = runner.advance(record.id, pin=entered.strip())
    return record


@click.command("transfers")
@click.option("--all", "show_all", is_flag=True, help="Include finished, failed and cancelled.")
@pass_app
def transfers(app: AppContext, show_all: bool) -> None:
    """List transfers in progress (with --all, also the ended ones)."""
    with app.wallet() as wallet:
        records = wallet.transfers.list(active_only=not show_all)
    if records:
        app.output.table(
            transfers_table(records, "Transfers" if show_all else "Transfers in progress")
        )
    else:
        app.output.say("No transfers in progress." if not show_all else "No transfers yet.")
    app.output.emit({"ok": True, "transfers": [transfer_json(r) for r in records]})


@click.command("continue")
@click.argument("transfer", required=False)
@click.option("--pin", help="The PIN, for a transfer waiting for one (name the TRANSFER).")
@click.option("--wait", type=DURATION, default=None, help="Keep going up to this long.")
@pass_app
def continue_(
    app: AppContext, transfer: str | None, pin: str | None, wait: timedelta | None
) -> None:
    """Advance every pending transfer (or just TRANSFER) after being offline."""
    if pin is not None and transfer is None:
        raise CliFailure("--pin needs the TRANSFER it is for.", ExitCode.USAGE)
    out = app.output
    with app.runner() as runner:
        if transfer is not None:
            record = runner.wallet.transfers.find(transfer)
            with out.waiting("Continuing the transfer…"):
                record = runner.advance(record.id, pin=pin)
                if wait is not None and record.status == TransferStatus.PENDING:
                    record = runner.complete(record.id, timeout=wait.total_seconds())
            record = _maybe_ask_pin(app, runner, record)
            report(app, runner.wallet, record, waited=wait is not None)
            return
        records = _continue_all(app, runner, wait)
        if not records:
            out.say("No transfers in progress.")
        for record in records:
            out.say(
                f"{plain(record.id)} {plain(record.role)} {plain(record.vertical or '?')}: "
                f"{status_text(record)} — {plain(sentence(record.detail) if record.detail else '')}"
            )
            if record.status == TransferStatus.FINISHED and record.role == "receiver":
                credential = runner.wallet.credentials.get(record.result_credential_id or "")
                label, ident = plain(credential.label), plain(credential.id)
                out.say(f"  [green]Received[/] [bold]{label}[/] ({ident}).")
        failed = any(r.status in (TransferStatus.FAILED, TransferStatus.CANCELLED) for r in records)
        code = ExitCode.TRANSFER_FAILED if failed else ExitCode.OK
        out.emit(
            {
                "ok": not failed,
                "exit_code": int(code),
                "transfers": [transfer_json(r) for r in records],
            }
        )
        if failed:
            raise click.exceptions.Exit(int(code))


def _continue_all(
    app: AppContext, runner: TransferRunner, wait: timedelta | None
) -> list[TransferRecord]:
    with app.output.waiting("Continuing transfers…"):
        records = {r.id: r for r in runner.continue_all()}
        deadline = time.monotonic() + (wait.total_seconds() if wait else 0)
        while True:
            pending = [r for r in records.values() if r.status == TransferStatus.PENDING]
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            # Several transfers share the time: short long-polls, one after the other.
            slice_ = max(1.0, min(remaining, 5.0) / len(pending))
            for record in pending:
                records[record.id] = runner.advance(record.id, wait=slice_)
    return list(records.values())


@click.command("cancel")
@click.argument("transfer")
@click.option(
    "--reason",
    type=click.Choice([reason.value for reason in CancelReason]),
    default=CancelReason.USER_CANCELLED.value,
    show_default=True,
    help="Why; the other device is told.",
)
@click.option("--message", help="A short note for the other device.")
@pass_app
def cancel(app: AppContext, transfer: str, reason: str, message: str | None) -> None:
    """Stop a transfer; the other side learns it was cancelled and why."""
    if message is not None and len(message.encode()) > 512:
        raise CliFailure("--message is limited to 512 bytes.", ExitCode.USAGE)
    with app.runner() as runner:
        record = runner.wallet.transfers.find(transfer)
        if record.status.is_terminal:
            raise CliFailure(
                f"Transfer {record.id} has already ended ({record.status}); nothing to cancel.",
                ExitCode.TRANSFER_FAILED,
            )
        with app.output.waiting("Cancelling…"):
            record = runner.cancel(record.id, reason, message)
        app.output.say(f"Transfer {plain(record.id)}: {status_text(record)}")
        app.output.emit({"ok": True, "exit_code": 0, "transfer": transfer_json(record)})
