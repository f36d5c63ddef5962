"""Where the relay may send a request: the SSRF-safe URL policy for webhooks and push endpoints.

A device chooses the URL, so the relay treats it as hostile.  The policy is checked twice:
statically when the token is deposited (scheme, userinfo, literal addresses, reserved names), and
again on every delivery after resolving the name, because DNS answers change.  The connection then
goes to the very address that was checked, so a second lookup cannot swap in another one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from tigress.relay.notify.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
_FORBIDDEN_CHARACTER = re.compile(r"[\x00-\x20\x7f]")  # controls and space
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IETF_PROTOCOL_ASSIGNMENTS = ipaddress.IPv4Network("192.0.0.0/24")
_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")


class UrlPolicyError(ValueError):
    """The URL, or an address it resolves to, is not one the relay may contact."""


@dataclass(frozen=True)
class TargetUrl:
    """A URL that passed the static checks, split into what a connection needs."""

    scheme: str
    host: str  # lower-case ASCII (IDNA) name, or the bare text of an IP literal
    port: int
    request_target: str  # path and query, never empty
    literal_ip: IPAddress | None

    @property
    def host_header(self) -> str:
        shown = (
            f"[{self.host}]" if isinstance(self.literal_ip, ipaddress.IPv6Address) else self.host
        )
        default = 443 if self.scheme == "https" else 80
        return shown if self.port == default else f"{shown}:{self.port}"

    @property
    def origin(self) -> str:
        """``scheme://host[:port]``, the audience of a VAPID token (RFC 8292 section 2)."""
        return f"{self.scheme}://{self.host_header}"


@dataclass(frozen=True)
class UrlPolicy:
    allow_insecure_loopback: bool = False
    extra_allowed_networks: tuple[IPNetwork, ...] = ()

    def parse(self, url: str) -> TargetUrl:
        """Static checks; raises UrlPolicyError naming the first rule the URL breaks."""
        if len(url) > MAX_URL_LENGTH:
            raise UrlPolicyError(f"URL longer than {MAX_URL_LENGTH} characters")
        if not url.isascii() or _FORBIDDEN_CHARACTER.search(url):
            raise UrlPolicyError("URL contains whitespace, control or non-ASCII characters")
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # e.g. an unbalanced "[" in the authority
            raise UrlPolicyError("URL is malformed") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http"):
            raise UrlPolicyError("URL scheme must be https")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise UrlPolicyError("URL must not contain userinfo (user:password@)")
        if parts.fragment or url.endswith("#"):
            raise UrlPolicyError("URL must not contain a fragment")
        try:
            port = parts.port
        except ValueError as exc:
            raise UrlPolicyError("URL port is not a number between 1 and 65535") from exc
        if port == 0:
            raise UrlPolicyError("URL port is not a number between 1 and 65535")
        raw_host = parts.hostname
        if not raw_host:
            raise UrlPolicyError("URL has no host")
        host, literal = _normalise_host(raw_host, bracketed=parts.netloc.find("[") != -1)
        if literal is None and (host == "localhost" or host.endswith(".localhost")):
            # RFC 6761: these names always mean the local machine, whatever DNS says.
            literal_for_policy: IPAddress | None = ipaddress.IPv4Address("127.0.0.1")
        else:
            literal_for_policy = literal
        if literal_for_policy is not None:
            self.check_address(literal_for_policy)
        if scheme == "http":
            if not self.allow_insecure_loopback:
                raise UrlPolicyError("URL scheme must be https")
            if literal_for_policy is None or not _is_loopback(literal_for_policy):
                raise UrlPolicyError("plain http is allowed for loopback addresses only")
        path = parts.path or "/"
        target = f"{path}?{parts.query}" if parts.query else path
        default_port = 443 if scheme == "https" else 80
        return TargetUrl(scheme, host, port or default_port, target, literal)

    def check_address(self, address: IPAddress) -> None:
        """Refuse addresses that are not on the public Internet (unless configured)."""
        if any(address in net for net in self.extra_allowed_networks):
            return
        if self.allow_insecure_loopback and _is_loopback(address):
            return
        reason = _non_public_reason(address)
        if reason is not None:
            raise UrlPolicyError(f"address is {reason}; the relay contacts public addresses only")

    async def resolve(self, target: TargetUrl, *, timeout: float) -> list[IPAddress]:
        """Resolve the host once and check every answer; the caller connects to these only.

        All answers must pass: a name that mixes a public and a private address is refused
        outright rather than trusted to pick the public one.
        """
        if target.literal_ip is not None:
            self.check_address(target.literal_ip)
            return [target.literal_ip]
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(
                    target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
        except TimeoutError as exc:
            raise ResolutionError("name resolution timed out") from exc
        except OSError as exc:
            raise ResolutionError("name resolution failed") from exc
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            text = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                continue  # not an internet address family
            self.check_address(address)
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise ResolutionError("name resolved to no usable address")
        return addresses


class ResolutionError(OSError):
    """DNS did not answer usefully; worth retrying later."""


def _normalise_host(raw_host: str, *, bracketed: bool) -> tuple[str, IPAddress | None]:
    host = raw_host.lower().rstrip(".") if not bracketed else raw_host.lower()
    if bracketed:
        if "%" in host:
            raise UrlPolicyError("IPv6 zone identifiers are not allowed in URLs")
        try:
            return host, ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise UrlPolicyError("URL host is not a valid IPv6 literal") from exc
    if not host or len(host) > 253:
        raise UrlPolicyError("URL host name is empty or longer than 253 characters")
    labels = host.split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        # No top-level domain is numeric, so this is an address.  Resolvers accept shorthand
        # such as 2130706433, 0x7f.1 or 127.1; only the canonical dotted quad is allowed.
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise UrlPolicyError("URL host is a non-canonical numeric address") from exc
        return host, address
    for label in labels:
        if not _HOST_LABEL.fullmatch(label):
            raise UrlPolicyError("URL host is not a valid DNS name")
    return host, None


def _is_loopback(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """IPv4 addresses reachable through an IPv6 one: mapped, 6to4, Teredo and NAT64 forms."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _non_public_reason(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = _non_public_reason(embedded)
            return None if inner is None else f"an IPv6 form of an IPv4 address that is {inner}"
        if address.is_site_local:
            return "site-local"
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
    )
    for flagged, reason in checks:
        if flagged:
            return reason
    if isinstance(address, ipaddress.IPv4Address) and (
        address in _SHARED_ADDRESS_SPACE or address in _IETF_PROTOCOL_ASSIGNMENTS
    ):
        return "private"
    if not address.is_global:
        return "not globally routable"
    return None
