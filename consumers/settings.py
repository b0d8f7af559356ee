"""The people's pages' own settings (`MASH_WEB_` prefix); Kafka and topic names come from broker.settings."""

from __future__ import annotations

from datetime import time

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WebSettings"]


class WebSettings(BaseSettings):
    """Web app, views, sign-in and morning alert settings; every field can be set as `MASH_WEB_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="MASH_WEB_", frozen=True, extra="ignore")

    database_url: str = Field("sqlite:///.local/web.db", description="SQLAlchemy URL (sqlite or postgresql+psycopg)")
    host: str = Field("127.0.0.1", description="address the web app listens on")
    port: int = Field(8000, ge=1, le=65535, description="port the web app listens on")
    public_url: str = Field("http://localhost:8000", description="the page's address, as linked from emails")
    cookie_secure: bool = Field(True, description="session cookies only over HTTPS (localhost counts as secure)")
    session_idle_minutes: int = Field(30, ge=1, description="a session ends after this long unused")
    session_max_hours: int = Field(12, ge=1, description="a session ends this long after sign-in, used or not")
    signin_max_failures: int = Field(5, ge=1, description="failed sign-ins per account name within the window")
    signin_client_max_failures: int = Field(20, ge=1, description="failed sign-ins per client address")
    signin_window_minutes: int = Field(15, ge=1, description="the sign-in rate limit's window")
    ack_timeout_seconds: float = Field(15.0, gt=0, description="longest wait for Kafka to take an acknowledgement")
    consumer_group: str = Field("mash-web-views", description="Kafka consumer group of the view consumer")
    smtp_host: str = Field("127.0.0.1", description="SMTP server for the morning alert")
    smtp_port: int = Field(8025, ge=1, le=65535, description="SMTP port")
    smtp_starttls: bool = Field(False, description="STARTTLS before authenticating")
    smtp_user: str | None = Field(None, description="SMTP user, when the server wants one")
    smtp_password: SecretStr | None = Field(None, description="SMTP password")
    smtp_timeout_seconds: float = Field(10.0, gt=0, description="SMTP connection and command timeout")
    mail_from: str = Field("encompass@mash.invalid", description="the alert's From address")
    alert_time: time = Field(time(7, 30), description="local (Europe/London) time of the morning alert")
    alert_window_minutes: int = Field(240, ge=1, description="a missed alert is still sent this long after its time")
    alert_poll_seconds: float = Field(30.0, gt=0, description="how often the alert scheduler looks")
