"""https delivery on loopback: the relay connects to the checked address yet verifies TLS (SNI and
certificate) for the URL's host name."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from relay.notify.receiver import Receiver, wait_until
from tigress.relay.notify import BackgroundPushDispatcher, PushConfig

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + base64.b64encode(b"t" * 32).decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(tmp_path: Path, sans: list[x509.GeneralName]) -> tuple[Path, ssl.SSLContext]:
    """A throw-away CA and a server certificate for ``sans``; returns the CA file and a server
    context."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("tigress test CA"))
        .issuer_name(_name("tigress test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("tigress test server"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain = tmp_path / "server.pem"
    chain.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(chain)
    return ca_file, server


async def deliver_once(
    make_config: Callable[..., PushConfig], ca_file: Path, server: ssl.SSLContext, host: str
) -> tuple[BackgroundPushDispatcher, Receiver, list[str | None]]:
    seen_sni: list[str | None] = []
    server.sni_callback = lambda _sock, name, _ctx: seen_sni.append(name)
    receiver = await Receiver().start(server)
    dispatcher = BackgroundPushDispatcher(make_config(ca_file=ca_file, max_attempts=3))
    await dispatcher.start()
    token = json.dumps({"url": receiver.url(scheme="https", host=host), "secret": SECRET})
    assert dispatcher.validate("webhook", token)
    dispatcher.notify("webhook", token, mailbox_id="m-tls", seq=1)
    await wait_until(lambda: dispatcher.stats()["delivered"] + dispatcher.stats()["failed"] == 1)
    await dispatcher.aclose()
    await receiver.close()
    return dispatcher, receiver, seen_sni


async def test_https_by_name_verifies_the_name_and_sends_sni(
    tmp_path: Path, make_config: Callable[..., PushConfig]
) -> None:
    ca_file, server = make_pki(tmp_path, [x509.DNSName("localhost")])
    dispatcher, receiver, seen_sni = await deliver_once(make_config, ca_file, server, "localhost")
    assert dispatcher.stats()["delivered"] == 1
    assert "localhost" in seen_sni
    assert receiver.requests[0].header("host") == f"localhost:{receiver.port}"


async def test_https_to_an_address_verifies_the_ip_certificate(
    tmp_path: Path, make_config: Callable[..., PushConfig]
) -> None:
    ca_file, server = make_pki(tmp_path, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    dispatcher, receiver, _ = await deliver_once(make_config, ca_file, server, "127.0.0.1")
    assert dispatcher.stats()["delivered"] == 1
    assert len(receiver.requests) == 1


async def test_certificate_for_another_name_fails_without_retry(
    tmp_path: Path, make_config: Callable[..., PushConfig]
) -> None:
    ca_file, server = make_pki(tmp_path, [x509.DNSName("other.example")])
    dispatcher, receiver, _ = await deliver_once(make_config, ca_file, server, "localhost")
    stats = dispatcher.stats()
    assert (stats["delivered"], stats["failed"], stats["retried"]) == (0, 1, 0)
    assert receiver.requests == []


async def test_untrusted_certificate_fails(
    tmp_path: Path, make_config: Callable[..., PushConfig]
) -> None:
    _, server = make_pki(tmp_path, [x509.DNSName("localhost")])
    (tmp_path / "other").mkdir()
    other_ca, _ = make_pki(tmp_path / "other", [x509.DNSName("localhost")])
    dispatcher, receiver, _ = await deliver_once(make_config, other_ca, server, "localhost")
    assert dispatcher.stats()["failed"] == 1
    assert receiver.requests == []
