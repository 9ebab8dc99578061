"""TLS for the sandbox: a throwaway CA and server certificate, made at every start.

simple-salesforce only speaks https, so the sandbox serves TLS on 127.0.0.1.
trustme makes a CA and a certificate for the loopback names; the CA is written
to `<cert dir>/ca.pem` for clients (`requests.Session().verify = ca.pem`), the
server's chain and key beside it. Files are replaced atomically, the key is
readable by its owner only. A restart makes a new CA: clients reload ca.pem.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme

__all__ = ["TlsFiles", "make_tls_files"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def make_tls_files(cert_dir: Path, extra_hosts: Sequence[str] = ()) -> TlsFiles:
    """Make a CA and a server certificate for the loopback names and `extra_hosts`."""
    hosts = list(dict.fromkeys([*_LOOPBACK, *(h for h in extra_hosts if h not in ("0.0.0.0", "::", ""))]))
    ca = trustme.CA(organization_name="crmpilot crm_sandbox")
    server = ca.issue_cert(*hosts)
    cert_dir.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(cert_dir / "ca.pem", cert_dir / "server.pem", cert_dir / "server-key.pem")
    _write(files.key, server.private_key_pem.bytes(), 0o600)
    _write(files.cert, b"".join(blob.bytes() for blob in server.cert_chain_pems), 0o644)
    _write(files.ca, ca.cert_pem.bytes(), 0o644)
    return files
