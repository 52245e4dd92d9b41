"""Configuration of operating ssoio: logs, metrics, TLS and proxies."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr

from ssoio.config.base import Section

__all__ = ["LoggingSettings", "MetricsSettings", "TlsSettings"]


class LoggingSettings(Section):
    """Where logs and the audit trail go."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"
    destination: Literal["stderr", "file"] = "stderr"
    file: str = ""


class MetricsSettings(Section):
    """Prometheus metrics."""

    enabled: bool = True
    path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9/_-]*$")] = "/metrics"
    port: int = Field(0, ge=0, le=65535)  # 0: on the main listener
    host: str = ""  # the metrics listener's address ("": the main listener's)
    bearer_token: SecretStr = SecretStr("")


class TlsSettings(Section):
    """TLS termination by ssoio itself (uvicorn's ssl options)."""

    cert_file: str = ""
    key_file: str = ""
    key_password: SecretStr = SecretStr("")
    ca_file: str = ""  # clients must then present a certificate signed by it (mTLS)
    ciphers: str = "TLSv1.2"
