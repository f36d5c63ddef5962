"""Command-line interface: ``tigress ...``."""

from __future__ import annotations

import click

from tigress import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tigress")
def main() -> None:
    """Share digital keys securely between devices (IETF Tigress)."""


from tigress.cli.relay import relay as _relay  # noqa: E402

main.add_command(_relay)
