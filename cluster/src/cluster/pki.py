"""The test's certificates, made with `openssl`: a CA, each llm-server's certificate (its
address in the subjectAltName) and the gateways' client certificate (mutual TLS)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


@dataclass(frozen=True)
class Pair:
    """A PEM certificate and its key (mode 0600, as openssl writes keys)."""

    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str) -> Pair:
    """A self-signed CA valid for a day."""
    pair = Pair(directory / f"{name}.pem", directory / f"{name}.key")
    _openssl(
        "req",
        "-x509",
        *_EC,
        "-days",
        "1",
        "-subj",
        f"/CN={name}",
        "-keyout",
        str(pair.key),
        "-out",
        str(pair.cert),
    )
    return pair


def issue(directory: Path, name: str, ca: Pair, san: str) -> Pair:
    """A certificate for `san` (e.g. `IP:10.231.7.21`) signed by `ca`, usable by a server and
    by a client."""
    pair = Pair(directory / f"{name}.pem", directory / f"{name}.key")
    csr, ext = directory / f"{name}.csr", directory / f"{name}.ext"
    ext.write_text(
        f"subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\n"
        "basicConstraints=critical,CA:FALSE\n"
    )
    _openssl(
        "req", "-new", *_EC, "-subj", f"/CN={name}", "-keyout", str(pair.key), "-out", str(csr)
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca.cert),
        "-CAkey",
        str(ca.key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        str(ext),
        "-out",
        str(pair.cert),
    )
    return pair
