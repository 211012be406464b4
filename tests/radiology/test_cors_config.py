"""RADIOLOGY_CORS_ORIGINS names the web origins (an external viewer) allowed to call DICOMweb from a browser."""
import pytest

from radiology.config import ConfigError, env_origins
from tests.platform_process import manage, platform_env


def test_no_origins_when_unset(monkeypatch):
    monkeypatch.delenv("RADIOLOGY_CORS_ORIGINS", raising=False)
    assert env_origins("RADIOLOGY_CORS_ORIGINS") == []


def test_an_empty_value_means_no_origins(monkeypatch):
    monkeypatch.setenv("RADIOLOGY_CORS_ORIGINS", " , ")
    assert env_origins("RADIOLOGY_CORS_ORIGINS") == []


def test_origins_are_read_comma_separated_without_spaces_or_trailing_slash(monkeypatch):
    monkeypatch.setenv("RADIOLOGY_CORS_ORIGINS", "https://viewer.example.org, http://127.0.0.1:3000/")
    assert env_origins("RADIOLOGY_CORS_ORIGINS") == ["https://viewer.example.org", "http://127.0.0.1:3000"]


@pytest.mark.parametrize("value", ["viewer.example.org", "ftp://viewer.example.org", "https://viewer.example.org/ohif",
                                   "https://", "http://127.0.0.1:port", "https://user:pw@viewer.example.org"])
def test_an_invalid_origin_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("RADIOLOGY_CORS_ORIGINS", f"https://ok.example.org,{value}")
    with pytest.raises(ConfigError, match="RADIOLOGY_CORS_ORIGINS"):
        env_origins("RADIOLOGY_CORS_ORIGINS")


def test_an_invalid_origin_stops_start_up_with_one_line(tmp_path):
    result = manage(platform_env(tmp_path, RADIOLOGY_CORS_ORIGINS="viewer.example.org"), "check", check=False)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("configuration error: RADIOLOGY_CORS_ORIGINS")


def test_the_settings_allow_the_configured_origins_on_dicomweb_only(tmp_path):
    code = ("from django.conf import settings; "
            "print(settings.CORS_ALLOWED_ORIGINS, settings.CORS_URLS_REGEX)")
    result = manage(platform_env(tmp_path, RADIOLOGY_CORS_ORIGINS="http://127.0.0.1:3000"), "shell", "-c", code)
    assert result.stdout.strip().splitlines()[-1] == r"['http://127.0.0.1:3000'] ^/(dicomweb/|wado$)"
