"""Settings come from flags, environment and TOML, and never show a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from runway_costs.core.config import DEFAULT_BASE_URL, ConfigError, load_settings
from runway_costs.core.configfile import FilePaths, load_file_paths

KEY = "key_CANARY_0123456789abcdef"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "runway-costs.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_without_config_the_default_org_comes_from_the_sdk_environment():
    settings = load_settings(env={"RUNWAYML_API_SECRET": KEY})
    (org,) = settings.orgs
    assert org.name == "default"
    assert org.base_url == DEFAULT_BASE_URL
    assert org.api_key.get_secret_value() == KEY
    assert settings.db_path == Path("data/runway.duckdb")


def test_base_url_and_db_come_from_environment():
    settings = load_settings(
        env={
            "RUNWAYML_API_SECRET": KEY,
            "RUNWAYML_BASE_URL": "http://127.0.0.1:9/",
            "RUNWAY_COSTS_DB": "/tmp/x.duckdb",
        }
    )
    assert settings.orgs[0].base_url == "http://127.0.0.1:9"
    assert settings.db_path == Path("/tmp/x.duckdb")


def test_db_flag_wins_over_environment():
    settings = load_settings(db_path=Path("a.duckdb"), env={"RUNWAY_COSTS_DB": "b.duckdb"})
    assert settings.db_path == Path("a.duckdb")


def test_config_lists_several_orgs_with_keys_from_env_and_file(tmp_path: Path):
    (tmp_path / "staging.key").write_text("key_from_file\n", encoding="utf-8")
    path = write(
        tmp_path,
        """
[[orgs]]
name = "prod"
api_key_env = "PROD_KEY"

[[orgs]]
name = "staging"
api_key_file = "staging.key"
base_url = "http://127.0.0.1:8000"

[collection]
refresh_days = 5
""",
    )
    settings = load_settings(config_path=path, env={"PROD_KEY": KEY})
    assert [o.name for o in settings.orgs] == ["prod", "staging"]
    assert settings.orgs[0].api_key.get_secret_value() == KEY
    assert settings.orgs[1].api_key.get_secret_value() == "key_from_file"
    assert settings.orgs[1].base_url == "http://127.0.0.1:8000"
    assert settings.collection.refresh_days == 5


def test_config_path_may_come_from_environment(tmp_path: Path):
    path = write(tmp_path, '[[orgs]]\nname = "prod"\napi_key_env = "PROD_KEY"\n')
    settings = load_settings(env={"RUNWAY_COSTS_CONFIG": str(path), "PROD_KEY": KEY})
    assert settings.orgs[0].name == "prod"


def test_repr_of_settings_never_shows_the_key(tmp_path: Path):
    settings = load_settings(env={"RUNWAYML_API_SECRET": KEY})
    assert KEY not in repr(settings)
    assert KEY not in str(settings.orgs[0])
    assert KEY not in settings.model_dump_json()


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ('[[orgs]]\nname = "prod"\napi_key_env = "NOPE"\n', {}, "NOPE is not set"),
        ('[[orgs]]\nname = "prod"\n', {}, "needs api_key_env or api_key_file"),
        ('[[orgs]]\nname = "prod"\napi_key = "k"\n', {}, "not in the config file"),
        ('[[orgs]]\nname = "p"\napi_key_file = "missing.key"\n', {}, "cannot read api_key_file"),
        (
            '[[orgs]]\nname = "a"\napi_key_env = "K"\n[[orgs]]\nname = "a"\napi_key_env = "K"\n',
            {"K": "x"},
            "must be unique: a",
        ),
        ("[collection]\nrefresh_days = 0\n", {}, "collection.refresh_days"),
        ("[collection]\nrefresh_dayz = 3\n", {}, "collection.refresh_dayz"),
        ("orgs = 3\n", {}, "orgs must be an array"),
        ("this is = = not toml", {}, "invalid TOML"),
        (
            '[[orgs]]\nname = "a"\napi_key_env = "K"\nbase_url = "ftp://x"\n',
            {"K": "x"},
            "base_url must start with http",
        ),
    ],
)
def test_bad_config_names_file_and_field(tmp_path: Path, text: str, env: dict, message: str):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:  # keys are read: the command calls the API
        load_settings(config_path=path, env=env, need_keys=True)
    assert message in str(info.value)
    assert str(info.value).startswith(f"{path}: ")


def test_missing_config_file_is_named(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config_path=tmp_path / "nope.toml", env={})


def test_require_orgs_explains_how_to_configure():
    with pytest.raises(ConfigError, match="RUNWAYML_API_SECRET"):
        load_settings(env={}, require_orgs=True)


def test_key_value_never_appears_in_config_errors(tmp_path: Path):
    path = write(tmp_path, '[[orgs]]\nname = "bad name!"\napi_key_env = "K"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config_path=path, env={"K": KEY})
    assert KEY not in str(info.value)
    assert "orgs.0.name" in str(info.value)


def test_file_paths_without_settings_follow_the_same_rules(tmp_path: Path):
    """``load_file_paths`` (what ``price`` uses): flag, then RUNWAY_COSTS_DB, then the
    file's ``db`` (relative to the file), then the default; ``rates`` only from a file."""
    assert load_file_paths(env={}) == FilePaths(Path("data/runway.duckdb"), None)
    assert load_file_paths(env={"RUNWAY_COSTS_DB": "/tmp/e.duckdb"}) == FilePaths(
        Path("/tmp/e.duckdb"), None
    )
    assert load_file_paths(
        db_path=Path("f.duckdb"), env={"RUNWAY_COSTS_DB": "/tmp/e.duckdb"}
    ) == FilePaths(Path("f.duckdb"), None)
    assert load_file_paths(env={"RUNWAY_COSTS_CONFIG": ""}) == FilePaths(
        Path("data/runway.duckdb"), None
    )
    path = write(tmp_path, 'rates = "mine.toml"\ndb = "d.duckdb"\n')
    from_file = FilePaths(tmp_path / "d.duckdb", tmp_path / "mine.toml")
    assert load_file_paths(config_path=path, env={}) == from_file
    assert load_file_paths(env={"RUNWAY_COSTS_CONFIG": str(path)}) == from_file
    assert load_file_paths(config_path=path, env={"RUNWAY_COSTS_DB": "/tmp/e.duckdb"}) == FilePaths(
        Path("/tmp/e.duckdb"), tmp_path / "mine.toml"
    )


def test_file_paths_check_a_config_file_whole(tmp_path: Path):
    path = write(tmp_path, 'rates = "mine.toml"\n[collection]\nrefresh_days = 0\n')
    with pytest.raises(ConfigError) as info:
        load_file_paths(config_path=path, env={})
    assert str(info.value).startswith(f"{path}: collection.refresh_days: ")
