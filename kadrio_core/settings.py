"""Settings: defaults < ``kadrio.toml`` < ``KADRIO_*`` environment < explicit arguments.

The TOML file is ``$KADRIO_CONFIG`` when set, else ``./kadrio.toml`` when it exists. Nested
values use ``__`` in the environment: ``KADRIO_OUTPUT__CRF=23``,
``KADRIO_PROVIDERS__WHISPER__MODEL=small``.
A stage may name a fallback chain: ``KADRIO_TRANSCRIBER=assemblyai,whisper``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .models import Layout, Order, OutputFormat, SelectionRequest

Chain = Annotated[list[str], NoDecode]


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "kadrio"


def config_path() -> Path | None:
    explicit = os.environ.get("KADRIO_CONFIG")
    if explicit:
        return Path(explicit)
    local = Path("kadrio.toml")
    return local if local.is_file() else None


class WebSettings(BaseModel):
    """The web app's sign-in and pages: ``KADRIO_SERVICE__WEB__*``."""

    model_config = ConfigDict(extra="forbid")

    secret_key: str | None = Field(
        default=None,
        min_length=32,
        description="signs cookies; default: a random key kept in <data dir>/secret_key",
    )
    session_days: int = Field(default=30, ge=1, le=365, description="sign-in session lifetime")
    sign_in_per_address: int = Field(default=5, ge=1, description="sign-in emails/address/hour")
    sign_in_per_ip: int = Field(default=20, ge=1, description="sign-in requests/IP/hour")
    timezone: str = Field(default="UTC", description="time zone of dates on the pages")
    media_origins: list[str] = Field(
        default_factory=list,
        description="origins clips are played from (CSP); default: derived from the s3 endpoint",
    )


class ServiceSettings(BaseModel):
    """The hosted service (``kadrio serve`` / ``kadrio worker``): ``KADRIO_SERVICE__*``."""

    model_config = ConfigDict(extra="forbid")

    queue_name: str = Field(default="kadrio", description="huey queue name (Redis key prefix)")
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="base URL in emails and webhooks"
    )
    upload_max_bytes: int = Field(default=2 * 1024**3, ge=1, description="largest upload body")
    url_expires: int = Field(default=900, ge=10, le=7 * 24 * 3600, description="presigned URLs, s")
    lease_seconds: float = Field(
        default=60.0, gt=0, description="a stage not heard from for this long is run again"
    )
    webhook_retries: int = Field(default=6, ge=0, le=20)
    webhook_retry_delay: float = Field(default=10.0, ge=0, description="doubles on each retry")
    webhook_allow_private: bool = Field(
        default=False, description="allow webhooks to loopback and private addresses"
    )
    db_pool_size: int = Field(default=10, ge=1, le=200, description="PostgreSQL connections")
    web: WebSettings = Field(default_factory=WebSettings)


class OperatorSettings(BaseModel):
    """Who runs the service, as the policy documents name them: ``KADRIO_OPERATOR__*``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", description="operator's full name or company, in the policies")
    status: str = Field(default="", description="legal status, e.g. self-employed under 422-FZ")
    tax_id: str = Field(default="", description="INN")
    email: str = Field(default="", description="privacy and account-deletion contact")
    website: str = Field(default="", description="the service's address, e.g. kadrio.ai")


class BillingSettings(BaseModel):
    """Plans and payments: ``KADRIO_BILLING__*``."""

    model_config = ConfigDict(extra="forbid")

    payments: str = Field(default="robokassa", description="payments provider name")
    plans_file: Path | None = Field(
        default=None, description="plans TOML; default: the plans.toml shipped with the server"
    )
    ending_notice_days: int = Field(
        default=3, ge=1, le=30, description="'subscription ends soon' email, days before the end"
    )


class PrivacySettings(BaseModel):
    """Analytics consent and how long personal data lives: ``KADRIO_PRIVACY__*``."""

    model_config = ConfigDict(extra="forbid")

    metrica_counter_id: str | None = Field(
        default=None, pattern=r"^\d{1,12}$", description="Yandex Metrica counter; none = no banner"
    )
    techlog_days: int = Field(default=30, ge=1, le=30, description="IP/user-agent log lifetime")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KADRIO_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    transcriber: Chain = ["whisper"]
    selector: Chain = ["local"]
    renderer: Chain = ["ffmpeg"]
    storage: str = "local"
    notifier: str = "outbox"

    language: str | None = None
    order: Order = "score"
    max_clips: int = Field(default=10, ge=1, le=100)
    min_seconds: float = Field(default=20.0, gt=0)
    max_seconds: float = Field(default=60.0, gt=0)
    caption_style: str = "bold"
    layout: Layout = "auto"
    output: OutputFormat = Field(default_factory=OutputFormat)
    providers: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="options per provider name, e.g. providers.whisper.model"
    )
    database_url: str | None = Field(
        default=None, description="postgresql://... or sqlite:///path; default <data dir>/kadrio.db"
    )
    queue_url: str | None = Field(
        default=None, description="redis://... or sqlite:///path; default <data dir>/queue.db"
    )
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    operator: OperatorSettings = Field(default_factory=OperatorSettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)

    @field_validator("transcriber", "selector", "renderer", mode="before")
    @classmethod
    def _split_chain(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, list) and not [v for v in value if v]:
            raise ValueError("name at least one provider")
        return [v for v in value if v] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _range(self) -> Settings:
        self.selection_request()
        return self

    def selection_request(self, **overrides: Any) -> SelectionRequest:
        fields = {
            "max_clips": self.max_clips,
            "min_seconds": self.min_seconds,
            "max_seconds": self.max_seconds,
            "language": self.language,
            "order": self.order,
        }
        fields.update({k: v for k, v in overrides.items() if v is not None})
        return SelectionRequest(**fields)

    def provider_options(self, name: str) -> dict[str, Any]:
        return dict(self.providers.get(name, {}))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning any configuration mistake into one clear BadInput line."""
    import tomllib

    from pydantic import ValidationError

    from .errors import BadInput, first_problem

    path = config_path()
    if path is not None and not path.is_file():
        raise BadInput(f"config file not found: {path}")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: invalid TOML: {exc}") from None
    except ValidationError as exc:
        raise BadInput(f"invalid setting {first_problem(exc, 'settings')}") from None
