"""Command-line interface: ``tigress ...``."""

from __future__ import annotations

import click

from tigress import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tigress")
def main() -> None:
    """Share digital keys securely between devices (IETF Tigress)."""
