"""The one TLS client context of a `ConnectionSettings`: every stream connection uses it.

It verifies the server: its certificate must chain to `ca_file` (SUPERTICKS_CA_FILE; the
system's trust store when unset) and name the host the client connected to (`localhost`,
`127.0.0.1` or `rabbitN` for the compose cluster, whose certificates `superticks cluster up`
makes in cluster/certs/). With `cert_file`/`key_file` it presents a client certificate.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from superticks.errors import ConfigError
from superticks.settings import ConnectionSettings

__all__ = ["client_context"]

_contexts: dict[tuple[Path | None, Path | None, Path | None], ssl.SSLContext] = {}


def client_context(settings: ConnectionSettings) -> ssl.SSLContext | None:
    """The TLS context to connect with, or None when `settings.tls` is off. Built once per
    (CA, certificate, key) and shared. Raises ConfigError for files that are not PEM."""
    if not settings.tls:
        return None
    key = (settings.ca_file, settings.cert_file, settings.key_file)
    context = _contexts.get(key)
    if context is None:
        context = _contexts[key] = _build(*key)
    return context


def _build(ca_file: Path | None, cert_file: Path | None, key_file: Path | None) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None
        )
    except ssl.SSLError as exc:
        raise ConfigError(
            f"SUPERTICKS_CA_FILE {ca_file} holds no PEM CA certificate ({exc.reason}): point it "
            "at the CA that signed the cluster's certificates (cluster/certs/ca.pem)"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # create_default_context already requires a certificate and checks the host name; say so.
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if cert_file is not None:
        try:
            context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"SUPERTICKS_CERT_FILE {cert_file} / SUPERTICKS_KEY_FILE {key_file}: not a "
                f"matching PEM certificate and key ({exc.reason})"
            ) from None
    return context
