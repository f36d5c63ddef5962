"""Command-line interface: ``tigress ...`` (see docs/cli.md; exit codes in exit_codes.py)."""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any

import click

from tigress import __version__
from tigress.cli.context import AppContext
from tigress.cli.errors import CODE_NAMES, CliFailure, classify
from tigress.cli.exit_codes import ExitCode
from tigress.cli.output import Output
from tigress.wallet import default_wallet_dir

DEBUG_ENV = "TIGRESS_DEBUG"


class TigressGroup(click.Group):
    """Turns every expected exception into one sentence and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.UsageError):
            raise
        except KeyboardInterrupt:
            raise _fail(
                ctx,
                CliFailure(
                    "Interrupted; transfers in progress are saved: run 'tigress continue' later.",
                    ExitCode.TIMEOUT,
                ),
            ) from None
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                if os.environ.get(DEBUG_ENV):
                    traceback.print_exc()
                failure = CliFailure(
                    f"Unexpected error ({type(exc).__name__}: {exc}); this is a bug: please "
                    f"report it, with the output of the same command run with {DEBUG_ENV}=1.",
                    ExitCode.INTERNAL,
                )
            raise _fail(ctx, failure) from None


class _Reported(click.exceptions.Exit):
    """A failure already printed (sentence on stderr; JSON error object with --json)."""


def _fail(ctx: click.Context, failure: CliFailure) -> click.exceptions.Exit:
    obj = ctx.find_object(AppContext)
    output = obj.output if obj is not None else Output(as_json=False)
    output.error(failure.message)
    code = failure.code
    output.emit(
        {
            "ok": False,
            "exit_code": int(code),
            "error": {"code": CODE_NAMES[code], "message": failure.message},
        }
    )
    return _Reported(int(code))


@click.group(cls=TigressGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tigress")
@click.option(
    "--wallet",
    "wallet_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="TIGRESS_WALLET",
    help="Wallet directory (env TIGRESS_WALLET; default: your data directory).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option(
    "--passphrase-env",
    metavar="VAR",
    help="Read the wallet passphrase from environment variable VAR (default TIGRESS_PASSPHRASE).",
)
@click.pass_context
def main(
    ctx: click.Context, wallet_dir: Path | None, as_json: bool, passphrase_env: str | None
) -> None:
    """Share digital keys securely between devices (IETF Tigress)."""
    ctx.obj = AppContext(
        wallet_dir=wallet_dir or default_wallet_dir(),
        output=Output(as_json=as_json),
        passphrase_env=passphrase_env,
    )


def _register() -> None:
    from tigress.cli.access_cmds import revoke, unlock  # noqa: PLC0415
    from tigress.cli.demo import demo  # noqa: PLC0415
    from tigress.cli.pe import pe_group  # noqa: PLC0415
    from tigress.cli.relay import relay  # noqa: PLC0415
    from tigress.cli.setup_cmds import car_group, home_group, hotel_group  # noqa: PLC0415
    from tigress.cli.transfer_cmds import (  # noqa: PLC0415
        cancel,
        continue_,
        receive,
        share,
        transfers,
    )
    from tigress.cli.wallet_cmds import wallet_group  # noqa: PLC0415

    for command in (
        wallet_group,
        home_group,
        car_group,
        hotel_group,
        share,
        receive,
        transfers,
        continue_,
        cancel,
        unlock,
        revoke,
        relay,
        pe_group,
        demo,
    ):
        main.add_command(command)


_register()
