"""What every broker's settings share: the strict base model and TLS options. Each broker's own
settings, source options and publish options live in its folder (`connectors/<broker>/settings.py`).

Unknown keys are rejected (`extra="forbid"`) so a typo such as `hots` fails at save time instead
of silently connecting to the default host.
"""

from __future__ import annotations

import ssl

from pydantic import BaseModel, ConfigDict


class SettingsModel(BaseModel):
    """Frozen, and unknown keys are an error naming the key."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsOptions(SettingsModel):
    """TLS for any broker. `insecure` skips certificate and host name checks (test brokers only)."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_certs)
        if self.certfile:
            ctx.load_cert_chain(self.certfile, self.keyfile)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def tls_options(value: bool | TlsOptions | None) -> TlsOptions | None:
    if value is True:
        return TlsOptions()
    if isinstance(value, TlsOptions):
        return value
    return None
