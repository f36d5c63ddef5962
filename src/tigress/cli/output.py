"""Where the CLI writes: people read rich text; scripts read one JSON document on stdout.

With ``--json`` nothing but that document goes to stdout: narration and spinners go to stderr.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


class Output:
    def __init__(self, *, as_json: bool, quiet: bool = False) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.err = Console(file=sys.stderr, highlight=False, soft_wrap=True)
        self.out = (
            self.err if as_json else Console(file=sys.stdout, highlight=False, soft_wrap=True)
        )

    def say(self, text: str) -> None:
        """A line for people (rich markup allowed; escape user data with :func:`plain`)."""
        if not self.quiet:
            self.out.print(text)

    def table(self, table: Table) -> None:
        if not self.quiet:
            self.out.print(table)

    def raw(self, text: str) -> None:
        """Text printed exactly (a QR code, a URL) for people."""
        if not self.quiet:
            self.out.print(text, markup=False, highlight=False, soft_wrap=True)

    def emit(self, document: dict[str, Any]) -> None:
        """The JSON result (``--json`` only): one object per line (JSON Lines)."""
        if self.as_json:
            sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")
            sys.stdout.flush()

    def error(self, message: str) -> None:
        self.err.print(f"[bold red]Error:[/] {escape(message)}", highlight=False)

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[None]:
        """A spinner on stderr while the block waits (only drawn on a terminal)."""
        if self.quiet or not self.err.is_terminal:
            yield
            return
        with self.err.status(message, spinner="dots"):
            yield


def plain(text: object) -> str:
    """User data shown inside rich markup."""
    return escape(str(text))
