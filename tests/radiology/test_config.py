"""Settings come from the environment; a bad value names its variable."""
import stat

import pytest

from radiology.config import (
    ConfigError, database_config, env_aet, env_bool, env_port, redis_url, secret_key, storage_location,
)


def test_port_defaults_when_unset(monkeypatch):
    monkeypatch.delenv("RADIOLOGY_HTTP_PORT", raising=False)
    assert env_port("RADIOLOGY_HTTP_PORT", 8000) == 8000


def test_port_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("RADIOLOGY_HTTP_PORT", "8443")
    assert env_port("RADIOLOGY_HTTP_PORT", 8000) == 8443


@pytest.mark.parametrize("value", ["abc", "80.5", "70000", "-1"])
def test_a_bad_port_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("RADIOLOGY_DICOM_PORT", value)
    with pytest.raises(ConfigError, match="RADIOLOGY_DICOM_PORT"):
        env_port("RADIOLOGY_DICOM_PORT", 11112)


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("no", False)])
def test_booleans(monkeypatch, value, expected):
    monkeypatch.setenv("DJANGO_DEBUG", value)
    assert env_bool("DJANGO_DEBUG") is expected


def test_a_bad_boolean_names_the_variable(monkeypatch):
    monkeypatch.setenv("RADIOLOGY_DICOM_OPEN", "maybe")
    with pytest.raises(ConfigError, match="RADIOLOGY_DICOM_OPEN must be 0 or 1"):
        env_bool("RADIOLOGY_DICOM_OPEN")


@pytest.mark.parametrize("value", ["THIS_AE_TITLE_IS_TOO_LONG", "BACK\\SLASH", "   "])
def test_invalid_ae_titles_are_refused(monkeypatch, value):
    monkeypatch.setenv("RADIOLOGY_DICOM_AET", value)
    with pytest.raises(ConfigError, match="RADIOLOGY_DICOM_AET"):
        env_aet("RADIOLOGY_DICOM_AET", "RADIOLOGY")


def test_sqlite_in_wal_mode_without_database_url(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = database_config("DATABASE_URL", tmp_path / "db.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_database_url_selects_postgresql(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://pacs:secret@db.local:5433/radiology")
    config = database_config("DATABASE_URL", tmp_path / "db.sqlite3")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == ("db.local", 5433, "radiology", "pacs")


@pytest.mark.parametrize("value", ["mysql://x@h/db", "postgres://host:notaport/db", "postgres://host:5432", "nonsense"])
def test_a_malformed_database_url_names_the_variable_and_hides_the_password(monkeypatch, tmp_path, value):
    monkeypatch.setenv("DATABASE_URL", value.replace("x@", "x:hunter2@"))
    with pytest.raises(ConfigError, match="DATABASE_URL") as error:
        database_config("DATABASE_URL", tmp_path / "db.sqlite3")
    assert "hunter2" not in str(error.value)


def test_redis_url_unset_means_in_process(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert redis_url("REDIS_URL") is None


def test_a_malformed_redis_url_names_the_variable(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "http://127.0.0.1:6379")
    with pytest.raises(ConfigError, match="REDIS_URL"):
        redis_url("REDIS_URL")


def test_object_storage_is_refused_until_its_backend_exists(monkeypatch):
    monkeypatch.setenv("RADIOLOGY_STORAGE", "s3://bucket/prefix")
    with pytest.raises(ConfigError, match="RADIOLOGY_STORAGE"):
        storage_location("RADIOLOGY_STORAGE", "/tmp/archive")


def test_the_secret_key_is_generated_once_and_readable_by_its_owner_only(monkeypatch, tmp_path):
    monkeypatch.delenv("DJANGO_SECRET_KEY", raising=False)
    first = secret_key("DJANGO_SECRET_KEY", tmp_path)
    assert secret_key("DJANGO_SECRET_KEY", tmp_path) == first
    assert len(first) >= 50
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_an_explicit_secret_key_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("DJANGO_SECRET_KEY", "from-the-environment")
    assert secret_key("DJANGO_SECRET_KEY", tmp_path) == "from-the-environment"
    assert not (tmp_path / "secret_key").exists()
