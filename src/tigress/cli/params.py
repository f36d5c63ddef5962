"""Parameter types: durations (``48h``), host:port, comma-separated lists."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import click

_DURATION = re.compile(r"^\s*(\d{1,7})\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Duration(click.ParamType[Any]):
    """``90``, ``90s``, ``30m``, ``48h`` or ``2d``."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        match = _DURATION.match(str(value).lower())
        if match is None:
            self.fail(f"{value!r} is not a duration like 90s, 30m, 48h or 2d", param, ctx)
        return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


class HostPort(click.ParamType[Any]):
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6); port 0 picks a free one."""

    name = "host:port"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        text = str(value)
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            self.fail(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:0)", param, ctx)
        return host.strip("[]"), int(port)


class CommaList(click.ParamType[Any]):
    """``a,b`` -> ``["a", "b"]`` (each item among ``choices``)."""

    name = "list"

    def __init__(self, choices: frozenset[str]) -> None:
        self.choices = choices

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, list):
            return value
        items = sorted({item.strip() for item in str(value).split(",") if item.strip()})
        wrong = [item for item in items if item not in self.choices]
        if not items or wrong:
            self.fail(
                f"{value!r}: choose from {', '.join(sorted(self.choices))} (comma-separated)",
                param,
                ctx,
            )
        return items


DURATION = Duration()
HOST_PORT = HostPort()
