"""Reading the platform's configuration from the environment.

Every setting that an operator may change comes from an environment variable (the contract in DESIGN.md
section 4). A bad value raises ConfigError, which `manage.py` turns into one line naming the variable.
"""
import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit


class ConfigError(Exception):
    """An environment variable holds a value the platform cannot use."""


def env_str(name, default):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 0 or 1 (got {raw!r})")


def env_int(name, default, minimum=None, maximum=None):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number (got {raw!r})") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(f"{name} must be between {minimum} and {maximum} (got {value})")
    return value


def env_choice(name, default, choices):
    value = os.environ.get(name) or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)} (got {value!r})")
    return value


def env_port(name, default):
    return env_int(name, default, minimum=0, maximum=65535)


def env_aet(name, default):
    """An application entity title: 1-16 characters of the DICOM default repertoire, no backslash (PS3.5 6.2)."""
    value = os.environ.get(name) or default
    if not (1 <= len(value) <= 16) or not value.strip() or "\\" in value or not value.isascii() \
            or any(ord(ch) < 32 for ch in value):
        raise ConfigError(f"{name} must be 1-16 printable ASCII characters without a backslash (got {value!r})")
    return value


def env_accession_format(name, default):
    """A str.format pattern for generated accession numbers with {number} (and optionally {year}); it must
    give at most 16 characters (DICOM SH) for numbers up to 999999."""
    value = os.environ.get(name) or default
    try:
        sample = value.format(year=2026, number=999999)
        if value.format(year=2026, number=1) == value.format(year=2026, number=2):
            raise ValueError
    except (KeyError, IndexError, ValueError):
        raise ConfigError(f"{name} must be a pattern with {{number}} and optionally {{year}}, "
                          f"like ACC{{year}}{{number:06d}} (got {value!r})") from None
    if len(sample) > 16 or "\\" in sample or not sample.isascii():
        raise ConfigError(f"{name} must give at most 16 ASCII characters without a backslash "
                          f"(got {value!r}, which gives {sample!r})")
    return value


def env_origins(name):
    """A comma-separated list of web origins (`scheme://host[:port]`, no path), as the browser sends them in
    the Origin header (RFC 6454 7). Empty when unset."""
    origins = []
    for raw in os.environ.get(name, "").split(","):
        origin = raw.strip().rstrip("/")
        if not origin:
            continue
        parts = urlsplit(origin)
        try:
            parts.port
        except ValueError:
            raise ConfigError(f"{name} has an origin with an invalid port (got {raw.strip()!r})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query \
                or parts.fragment or parts.username or parts.password:
            raise ConfigError(f"{name} must be comma-separated origins like https://viewer.example.org:3000 "
                              f"(got {raw.strip()!r})")
        origins.append(origin)
    return origins


def data_dir(name="RADIOLOGY_DATA_DIR", default="./var"):
    path = Path(os.environ.get(name) or default).resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{name}: cannot create {path}: {exc.strerror}") from None
    return path


def database_config(name, sqlite_path):
    """Django DATABASES['default'] from DATABASE_URL, or SQLite in WAL mode when it is unset."""
    url = os.environ.get(name, "")
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(sqlite_path),
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue on the busy timeout
                # instead of failing with "database is locked" when a read transaction upgrades to a write.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                # synchronous=FULL: a committed row survives power loss, which an acknowledged image needs.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
            },
        }
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql") or not parts.path.strip("/"):
        raise ConfigError(
            f"{name} must look like postgres://user[:password]@host[:port]/database (got {_redact(url)!r})")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{name} has an invalid port (got {_redact(url)!r})") from None
    import dj_database_url

    config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    config["PORT"] = port or ""
    return config


def redis_url(name):
    url = os.environ.get(name, "")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix") or (parts.scheme != "unix" and not parts.hostname):
        raise ConfigError(f"{name} must look like redis://host:port/db (got {_redact(url)!r})")
    try:
        parts.port
    except ValueError:
        raise ConfigError(f"{name} has an invalid port (got {_redact(url)!r})") from None
    return url


def secret_key(name, directory):
    """DJANGO_SECRET_KEY, or a key generated once and kept in the data dir readable by its owner only."""
    value = os.environ.get(name)
    if value:
        return value
    path = Path(directory) / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(50)
    # Written aside, then linked into place: two processes starting at once agree on the first complete key.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".secret_key.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text().strip()
    finally:
        os.unlink(tmp)
    return key


def storage_location(name, default):
    """The archive folder. Object storage (s3://) is accepted once its backend exists (scale-out issue)."""
    value = os.environ.get(name) or str(default)
    if "://" in value:
        raise ConfigError(f"{name}: only a folder is supported so far, object storage is not (got {value!r})")
    return str(Path(value).resolve())


def _redact(url):
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
