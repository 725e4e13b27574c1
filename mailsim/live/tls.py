"""TLS for the live server: a certificate for 127.0.0.1 and localhost, made on first use.

``mailsim serve --tls`` needs a certificate that a client can verify without a public CA. The
first run makes a private CA and a server certificate with ``trustme`` (built on
``cryptography``; nothing here does any cryptography of its own) and keeps them in
``<maildir>/tls/``: ``ca.pem`` is what a client trusts (``swaks --tls-ca-path``, msmtp's
``tls_trust_file``, ``ssl.create_default_context(cafile=...)``), ``server.pem`` holds the
server's key and certificate chain. Later runs reuse them, so a client configured once keeps
working. The key files are written readable by their owner only.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TLSFiles", "ensure_certificate", "server_context"]

#: The names the certificate is valid for: the loopback addresses the live server listens on.
CERTIFICATE_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TLSFiles:
    """Where the live server's TLS material is.

    Attributes:
        ca: the CA certificate a client trusts (PEM).
        server: the server's private key and certificate chain (PEM).
    """

    ca: Path
    server: Path


def ensure_certificate(directory: Path) -> TLSFiles:
    """The CA and server certificate in ``directory``, made with trustme if they are missing.

    Raises:
        OSError: the directory or the files cannot be written.
    """
    files = TLSFiles(directory / "ca.pem", directory / "server.pem")
    if files.ca.is_file() and files.server.is_file():
        return files
    import trustme  # imported here: it loads cryptography, which `mailsim --help` does not need

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="mailsim serve local CA")
    leaf = ca.issue_cert(*CERTIFICATE_NAMES, common_name="localhost")
    _write_private(files.server, leaf.private_key_and_cert_chain_pem.bytes())
    files.ca.write_bytes(ca.cert_pem.bytes())
    return files


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner only (the server's private key)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def server_context(files: TLSFiles) -> ssl.SSLContext:
    """A server-side context: TLS 1.2 or newer, the certificate loaded (ssl's secure defaults)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.server)
    return context
