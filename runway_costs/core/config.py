"""Typed configuration, loaded once at the edge (the CLI) and passed down.

Secrets (API keys, alert URLs) are held as ``SecretStr`` so that ``repr``, logs and
error messages never show them; call ``.get_secret_value()`` only where the secret
is put on the wire.

Every value is checked where it is loaded: numbers are finite (no ``inf``/``nan``),
positive where a zero would divide or stall, and bounded where a huge value would overflow
a date, a timer or an integer; a wrong type names the file and the key. API keys are
resolved only when the command calls the API (``need_keys``): read-only commands run with
the key variables unset.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

# Where the configuration comes from (file, environment variables, the files it names) and
# ConfigError live in core.configfile, which commands needing only paths use alone.
from runway_costs.core.configfile import (
    DEFAULT_BASE_URL,
    DEFAULT_DB,
    ENV_BASE_URL,
    ENV_CONFIG,
    ENV_KEY,
    ConfigError,
    config_file,
    file_paths,
    read_config,
)
from runway_costs.core.configfile import ENV_PASSWORD as ENV_PASSWORD
from runway_costs.core.money import CREDIT_USD, MAX_CREDITS

WEEK_MINUTES = 7 * 24 * 60
HOUR_SECONDS = 3600
YEAR_HOURS = 366 * 24
MAX_RATIO = 1000.0  # a threshold as a share of a cap, budget or limit


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


TAG_KEY_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
MAX_TAG_VALUE = 200
MAX_TAGS = 50
MAX_KEY_LABELS = 1000


def _check_text(what: str, value: object, limit: int) -> str:
    """A tag value or a key label: a non-empty printable string of at most ``limit``."""
    if not isinstance(value, str):
        raise ValueError(f"{what}: must be a string, got {value!r}")
    if not value.strip() or len(value) > limit or not value.isprintable():
        raise ValueError(f"{what}: must be 1..{limit} printable characters, got {value!r}")
    return value


class OrgConfig(_Strict):
    """One Runway organization, named by the user (the API has no org name).

    ``tags`` describe the organization (team, cost center, ...): free keys, string values,
    applied to its whole history when read (never stored per day). ``keys`` names its API
    key ids (as the usage endpoint reports them in ``resultsByApiKey``) for reports.
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    api_key: SecretStr
    base_url: str = DEFAULT_BASE_URL
    tags: dict[str, str] = Field(default_factory=dict)
    keys: dict[str, str] = Field(default_factory=dict)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, v: object) -> object:
        if not isinstance(v, dict):
            raise ValueError(f'tags must be a table of key = "value", got {v!r}')
        if len(v) > MAX_TAGS:
            raise ValueError(f"tags: at most {MAX_TAGS} keys")
        for key, value in v.items():
            if not re.match(TAG_KEY_PATTERN, str(key)):
                raise ValueError(
                    f"tags: key {key!r} must be 1..64 letters, digits, '_', '.' or '-'"
                )
            _check_text(f"tags.{key}", value, MAX_TAG_VALUE)
        return v

    @field_validator("keys", mode="before")
    @classmethod
    def _keys(cls, v: object) -> object:
        if not isinstance(v, dict):
            raise ValueError(f'keys must be a table of "<apiKeyId>" = "label", got {v!r}')
        if len(v) > MAX_KEY_LABELS:
            raise ValueError(f"keys: at most {MAX_KEY_LABELS} entries")
        for key, value in v.items():
            _check_text("keys: an API key id", key, MAX_TAG_VALUE)
            _check_text(f"keys.{key}", value, MAX_TAG_VALUE)
        return v

    # Why the key could not be read, when settings were loaded without needing keys (the
    # key is then empty, and the API client refuses an empty key before any request).
    key_problem: str | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {v!r}")
        return v.rstrip("/")


class CollectionConfig(_Strict):
    """How and how often the collector talks to the API."""

    refresh_days: int = Field(3, ge=1, le=90)
    snapshot_minutes: float = Field(15, gt=0, le=WEEK_MINUTES)
    usage_minutes: float = Field(60, gt=0, le=WEEK_MINUTES)
    concurrency: int = Field(8, ge=1, le=256)
    timeout_seconds: float = Field(20.0, gt=0, le=HOUR_SECONDS)
    max_attempts: int = Field(5, ge=1, le=20)
    backoff_base_seconds: float = Field(0.5, ge=0, le=HOUR_SECONDS)
    backoff_max_seconds: float = Field(30.0, ge=0, le=HOUR_SECONDS)


class Budget(_Strict):
    """A calendar-month budget for an organization or a tag (``tag = "team=growth"``: the
    organizations carrying that tag, together), optionally for one model."""

    org: str | None = Field(None, min_length=1)
    tag: str | None = Field(None, min_length=3, max_length=300)
    model: str | None = Field(None, min_length=1)
    credits: int | None = Field(None, gt=0, le=MAX_CREDITS)
    usd: float | None = Field(None, gt=0)

    def monthly_credits(self, credit_usd: float = CREDIT_USD) -> int:
        if self.credits is not None:
            return self.credits
        assert self.usd is not None
        return round(self.usd / credit_usd)

    @field_validator("usd")
    @classmethod
    def _one_of(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is not None and info.data.get("credits") is not None:
            raise ValueError("set credits or usd, not both")
        return v

    @field_validator("tag")
    @classmethod
    def _tag_pair(cls, v: str | None) -> str | None:
        if v is None:
            return v
        key, sep, value = v.partition("=")
        if not sep or not re.match(TAG_KEY_PATTERN, key) or not value.strip():
            raise ValueError(f'tag must be written key=value (e.g. "team=growth"), got {v!r}')
        return v

    @model_validator(mode="after")
    def _amount(self) -> Budget:
        if (self.org is None) == (self.tag is None):
            raise ValueError("a budget names an org or a tag (one of them)")
        if self.credits is None and self.usd is None:
            raise ValueError(f"budget for {self.label!r} needs credits or usd")
        return self

    @property
    def tag_pair(self) -> tuple[str, str] | None:
        """(key, value) of a tag budget, None for an organization's."""
        if self.tag is None:
            return None
        key, _, value = self.tag.partition("=")
        return key, value

    @property
    def label(self) -> str:
        """What the budget covers: the org name, or ``tag team=growth``."""
        return self.org if self.org is not None else f"tag {self.tag}"

    def covers(self, org: str, tags: dict[str, str]) -> bool:
        """Whether an organization (with its tags) counts against this budget."""
        if self.org is not None:
            return self.org == org
        pair = self.tag_pair
        return pair is not None and tags.get(pair[0]) == pair[1]


class AlertThresholds(_Strict):
    """Alert rule thresholds; every one has a default and can be set in [alerts]."""

    cap_forecast_warn: float = Field(0.80, le=MAX_RATIO)
    cap_forecast_critical: float = Field(1.00, le=MAX_RATIO)
    cap_used_levels: tuple[float, float, float] = (0.50, 0.80, 1.00)
    budget_used_warn: float = Field(0.80, le=MAX_RATIO)
    budget_used_critical: float = Field(1.00, le=MAX_RATIO)
    budget_forecast_ratio: float = Field(1.00, le=MAX_RATIO)
    runout_warn_days: int = Field(7, le=3660)
    runout_critical_days: int = Field(2, le=3660)
    daily_generations_ratio: float = Field(0.90, le=MAX_RATIO)
    anomaly_mads: float = Field(5.0, le=MAX_RATIO)
    anomaly_min_credits: int = Field(100, le=MAX_CREDITS)
    stale_hours: float = Field(2.0, le=YEAR_HOURS)

    @model_validator(mode="after")
    def _ordered(self) -> AlertThresholds:
        """Every threshold positive, and each warning level below its critical level."""
        values = self.model_dump()
        bad = [k for k, v in values.items() if k != "cap_used_levels" and v <= 0]
        bad += ["cap_used_levels"] if min(self.cap_used_levels) <= 0 else []
        if bad:
            raise ValueError(f"must be greater than 0: {', '.join(bad)}")
        if max(self.cap_used_levels) > MAX_RATIO:
            raise ValueError(f"cap_used_levels: each level must be at most {MAX_RATIO:g}")
        pairs = [
            ("cap_forecast_warn", "cap_forecast_critical"),
            ("budget_used_warn", "budget_used_critical"),
        ]
        for low, high in pairs:
            if values[low] > values[high]:
                raise ValueError(f"{low} ({values[low]}) is above {high} ({values[high]})")
        if self.runout_critical_days > self.runout_warn_days:
            raise ValueError(
                f"runout_critical_days ({self.runout_critical_days}) is above "
                f"runout_warn_days ({self.runout_warn_days})"
            )
        if list(self.cap_used_levels) != sorted(self.cap_used_levels):
            raise ValueError("cap_used_levels must be ascending (info, warning, critical)")
        return self


# One notice to one channel, every attempt included, must be done within this (seconds):
# a receiver that answers slowly or never costs a check at most this much per channel.
DELIVERY_DEADLINE_SECONDS = 15.0


class AlertsConfig(_Strict):
    urls: list[SecretStr] = Field(default_factory=list)
    thresholds: AlertThresholds = AlertThresholds()
    delivery_attempts: int = Field(3, ge=1, le=10)
    delivery_timeout_seconds: float = Field(DELIVERY_DEADLINE_SECONDS, gt=0, le=300)


class Settings(_Strict):
    """Everything a command needs, resolved from flags, environment and the TOML file."""

    db_path: Path = DEFAULT_DB
    config_path: Path | None = None
    orgs: tuple[OrgConfig, ...] = ()
    collection: CollectionConfig = CollectionConfig()
    budgets: tuple[Budget, ...] = ()
    alerts: AlertsConfig = AlertsConfig()
    rates_path: Path | None = None
    credit_usd: float = Field(CREDIT_USD, gt=0, le=1000)  # USD per credit (core.money)
    timezone: Literal["UTC"] = "UTC"

    @model_validator(mode="after")
    def _budget_amounts(self) -> Settings:
        """A USD budget is whole credits at ``credit_usd``: at least one, at most MAX_CREDITS."""
        for i, b in enumerate(self.budgets):
            if b.usd is None:
                continue
            credits = b.usd / self.credit_usd
            if credits > MAX_CREDITS:
                raise ValueError(
                    f"budgets[{i}]: usd {b.usd:g} is more than the {MAX_CREDITS:,} credits "
                    "a budget may hold"
                )
            if round(credits) < 1:
                raise ValueError(
                    f"budgets[{i}]: usd {b.usd:g} is less than one credit (USD {self.credit_usd:g})"
                )
        return self

    def tags_of(self, org: str) -> dict[str, str]:
        """The tags configured for ``org`` (none for an organization not in the config)."""
        for o in self.orgs:
            if o.name == org:
                return dict(o.tags)
        return {}

    def tag_keys(self) -> list[str]:
        """Every tag key used by some configured organization, sorted."""
        return sorted({k for o in self.orgs for k in o.tags})

    def budget_orgs(self, budget: Budget, known: list[str] | None = None) -> list[str]:
        """The organizations a budget covers: its org, or every org carrying its tag."""
        if budget.org is not None:
            return [budget.org]
        names = [o.name for o in self.orgs] if known is None else known
        return sorted(n for n in names if budget.covers(n, self.tags_of(n)))

    def org(self, name: str) -> OrgConfig:
        for o in self.orgs:
            if o.name == name:
                return o
        known = ", ".join(o.name for o in self.orgs) or "none"
        raise ConfigError(f"unknown organization {name!r} (configured: {known})")


def _resolve_key(
    raw: dict, index: int, source: str, base_dir: Path, env: dict[str, str], need_keys: bool
) -> tuple[SecretStr, str | None]:
    """The org's key and, when it cannot be read and keys are not needed, why not (the key
    is then empty). Where the key comes from is checked either way; that it can be read
    only matters to a command that calls the API (``need_keys``), else it is an error."""
    where = f"{source}: orgs[{index}]"
    if "api_key" in raw:
        raise ConfigError(
            f"{where}: put the key in an environment variable (api_key_env) "
            "or a file (api_key_file), not in the config file"
        )
    env_name = raw.pop("api_key_env", None)
    key_file = raw.pop("api_key_file", None)
    for key, value in (("api_key_env", env_name), ("api_key_file", key_file)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{where}.{key}: must be a non-empty string, got {value!r}")
    if env_name and key_file:
        raise ConfigError(f"{where}: set api_key_env or api_key_file, not both")
    problem: str
    if env_name:
        value = env.get(env_name, "").strip()
        if value:
            return SecretStr(value), None
        problem = f"{where}: environment variable {env_name} is not set or empty"
    elif key_file:
        path = Path(key_file).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            problem = f"{where}: cannot read api_key_file {path}: {exc.strerror}"
        except UnicodeDecodeError:
            problem = f"{where}: api_key_file {path} is not UTF-8 text"
        else:
            if value:
                return SecretStr(value), None
            problem = f"{where}: api_key_file {path} is empty"
    else:
        raise ConfigError(f"{where}: needs api_key_env or api_key_file")
    if need_keys:
        raise ConfigError(problem)
    return SecretStr(""), problem


def _format_validation(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {loc}: {msg}" if loc else f"{source}: {msg}")
    return "\n".join(lines)


def load_settings(
    config_path: Path | None = None,
    db_path: Path | None = None,
    env: dict[str, str] | None = None,
    require_orgs: bool = False,
    need_keys: bool | None = None,
) -> Settings:
    """Build Settings from flags, then environment, then the TOML file, then defaults.

    With no config file the single organization ``default`` comes from
    RUNWAYML_API_SECRET / RUNWAYML_BASE_URL, as the official SDK does.

    ``need_keys`` (default: ``require_orgs``): every configured key must be readable, as
    for a command that calls the API. Without it an unreadable key is left empty and the
    reason kept in ``OrgConfig.key_problem``; a read-only command never uses it.
    """
    need_keys = require_orgs if need_keys is None else need_keys
    env = dict(os.environ) if env is None else env
    config_path = config_file(config_path, env)
    data: dict = {}
    source = "<defaults>"
    if config_path is not None:
        source = str(config_path)
        data = read_config(config_path)
    base_dir = Path(config_path).parent if config_path else Path.cwd()

    orgs_raw = data.pop("orgs", None)
    orgs: list[dict] = []
    if orgs_raw is not None:
        if not isinstance(orgs_raw, list):
            raise ConfigError(f"{source}: orgs must be an array of tables ([[orgs]])")
        for i, raw in enumerate(orgs_raw):
            if not isinstance(raw, dict):
                raise ConfigError(f"{source}: orgs[{i}] must be a table")
            raw = dict(raw)
            raw["api_key"], raw["key_problem"] = _resolve_key(
                raw, i, source, base_dir, env, need_keys
            )
            orgs.append(raw)
        names = [o.get("name") for o in orgs]
        dupes = sorted({n for n in names if names.count(n) > 1 and n})
        if dupes:
            raise ConfigError(f"{source}: organization names must be unique: {', '.join(dupes)}")
    elif env.get(ENV_KEY, "").strip():
        orgs.append(
            {
                "name": "default",
                "api_key": SecretStr(env[ENV_KEY].strip()),
                "base_url": env.get(ENV_BASE_URL) or DEFAULT_BASE_URL,
            }
        )

    alerts = data.pop("alerts", None)
    if isinstance(alerts, dict) and "urls" in alerts:
        alerts = dict(alerts)
        urls = alerts["urls"]
        if isinstance(urls, list):
            alerts["urls"] = [_expand_env(u, env, source) for u in urls]
    if alerts is not None:
        data["alerts"] = alerts
    data.update(file_paths(data, source, base_dir, db_path, env))

    try:
        settings = Settings(config_path=config_path, orgs=tuple(orgs), **data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, source)) from None
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if orgs_raw is not None:
        _check_budget_orgs(settings, source)
    else:
        for i, b in enumerate(settings.budgets):
            if b.tag is not None:
                raise ConfigError(
                    f"{source}: budgets[{i}].tag: tags are set on [[orgs]], and there are none"
                )
    if require_orgs and not settings.orgs:
        raise ConfigError(
            f"no organization configured: set {ENV_KEY} (and optionally {ENV_BASE_URL}), "
            f"or pass --config / {ENV_CONFIG} with [[orgs]] entries"
        )
    return settings


def _check_budget_orgs(settings: Settings, source: str) -> None:
    """With [[orgs]] in the file, a budget must name one of them (else it would never be
    compared with any spend)."""
    names = [o.name for o in settings.orgs]
    for i, b in enumerate(settings.budgets):
        if b.tag is not None:
            if not settings.budget_orgs(b):
                raise ConfigError(
                    f"{source}: budgets[{i}].tag: no organization in [[orgs]] has tag {b.tag!r}"
                )
            continue
        if b.org not in names:
            raise ConfigError(
                f"{source}: budgets[{i}].org: {b.org!r} is not an organization in [[orgs]] "
                f"(configured: {', '.join(names) or 'none'})"
            )


def _expand_env(value: object, env: dict[str, str], source: str) -> object:
    """Alert URLs may be written as ``env:VAR`` so the secret stays out of the file."""
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if not env.get(name):
            raise ConfigError(f"{source}: alerts.urls: environment variable {name} is not set")
        return env[name]
    return value
