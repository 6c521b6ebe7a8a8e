"""The HTTPS listener of the file-transfer app, with the CSMS server certificates.

Same protocol rules as the wss listener (TLS 1.2+, the whitepaper's suites, RSA and ECDSA
certificates side by side), but no client certificate: the per-request token in the URL is the
credential. A renewed server certificate applies to the next handshake: the entry context
hands each handshake to the current one in its SNI callback.
"""

from __future__ import annotations

import ssl

from chargewarden.gateway.tls import TLS12_CIPHERS
from chargewarden.pki.material import TlsMaterial


def files_context(material: TlsMaterial) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    for chain, key in material.server_chains:
        context.load_cert_chain(chain, key, password=material.key_passphrase)
    context.verify_mode = ssl.CERT_NONE
    return context


class LiveContext:
    """An SSLContext for the listener whose certificates can be replaced without a restart."""

    def __init__(self, material: TlsMaterial) -> None:
        self._current = files_context(material)
        self.entry = files_context(material)
        self.entry.sni_callback = self._switch

    def _switch(self, connection: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        connection.context = self._current

    def replace(self, material: TlsMaterial) -> None:
        self._current = files_context(material)
        # Clients that send no SNI (a bare IP address in the URL) stay on the entry context.
        for chain, key in material.server_chains:
            self.entry.load_cert_chain(chain, key, password=material.key_passphrase)
