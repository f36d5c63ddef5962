"""The receiver evaluates a relay before using it (requirements, security considerations).

Checks, in order: the origin is on the allow-list (empty list: any relay), the scheme is https
unless the host is loopback, and the relay's ``/.well-known/tigress`` says it serves API ``v1``
and accepts the ``tigress-noise-v1`` payload type.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tigress.client.errors import RelayError, RelayUntrusted
from tigress.client.relay import RelayClient
from tigress.protocol.invitation import is_loopback_host

TRUSTED_RELAYS_ENV = "TIGRESS_TRUSTED_RELAYS"
REQUIRED_API_VERSION = "v1"
REQUIRED_PAYLOAD_TYPE = "tigress-noise-v1"


def normalise_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lowercase with the default port dropped."""
    parts = urlsplit(origin.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise RelayUntrusted(f"{origin!r} is not a relay origin (https://host[:port]).")
    try:
        port = parts.port
    except ValueError as exc:
        raise RelayUntrusted(f"{origin!r} has an invalid port.") from exc
    default = 443 if scheme == "https" else 80
    shown_host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown_host}" + ("" if port in (None, default) else f":{port}")


def origins_from_environment() -> list[str]:
    """``TIGRESS_TRUSTED_RELAYS``: origins separated by commas or whitespace."""
    text = os.environ.get(TRUSTED_RELAYS_ENV, "")
    return [item for item in text.replace(",", " ").split() if item]


@dataclass
class RelayTrust:
    """Decides whether this device will use a relay named in an invitation."""

    allowed_origins: list[str] = field(default_factory=list)
    client_factory: Callable[[str], RelayClient] = RelayClient

    def __post_init__(self) -> None:
        self.allowed_origins = [normalise_origin(origin) for origin in self.allowed_origins]

    @classmethod
    def from_environment(cls, extra: Iterable[str] = ()) -> RelayTrust:
        return cls([*origins_from_environment(), *extra])

    def check_origin(self, origin: str) -> str:
        """Allow-list and scheme checks (no network); returns the normalised origin."""
        normalised = normalise_origin(origin)
        parts = urlsplit(normalised)
        if parts.scheme != "https" and not is_loopback_host(parts.hostname or ""):
            raise RelayUntrusted(
                f"The relay {normalised} does not use https; only a relay on this machine may."
            )
        if self.allowed_origins and normalised not in self.allowed_origins:
            raise RelayUntrusted(
                f"The relay {normalised} is not on this device's list of trusted relays "
                f"(set {TRUSTED_RELAYS_ENV} to allow it)."
            )
        return normalised

    def evaluate(self, origin: str, client: RelayClient | None = None) -> dict[str, object]:
        """All checks, including the relay's metadata; returns that metadata."""
        normalised = self.check_origin(origin)
        own = client is None
        relay = client or self.client_factory(normalised)
        try:
            metadata = relay.well_known()
        except RelayUntrusted:
            raise
        except RelayError as exc:
            raise RelayUntrusted(
                f"The relay {normalised} did not describe itself (/.well-known/tigress): {exc}"
            ) from exc
        finally:
            if own:
                relay.close()
        versions = metadata.get("apiVersions")
        if not isinstance(versions, list) or REQUIRED_API_VERSION not in versions:
            raise RelayUntrusted(
                f"The relay {normalised} does not serve the tigress API {REQUIRED_API_VERSION}."
            )
        payload_types = metadata.get("payloadTypes")
        if not isinstance(payload_types, list) or REQUIRED_PAYLOAD_TYPE not in payload_types:
            raise RelayUntrusted(
                f"The relay {normalised} does not accept {REQUIRED_PAYLOAD_TYPE} messages."
            )
        return metadata
