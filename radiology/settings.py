"""Settings for the radiology platform, driven by the environment variables of DESIGN.md section 4."""
import warnings
from pathlib import Path

from radiology.config import (
    data_dir, database_config, env_accession_format, env_aet, env_bool, env_choice, env_int, env_origins, env_port,
    env_str, redis_url, secret_key, storage_location,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = data_dir()

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = secret_key("DJANGO_SECRET_KEY", DATA_DIR)

HTTP_HOST = env_str("RADIOLOGY_HTTP_HOST", "127.0.0.1")
HTTP_PORT = env_port("RADIOLOGY_HTTP_PORT", 8000)
DICOM_PORT = env_port("RADIOLOGY_DICOM_PORT", 11112)
DICOM_AET = env_aet("RADIOLOGY_DICOM_AET", "RADIOLOGY")
DICOM_OPEN = env_bool("RADIOLOGY_DICOM_OPEN", False)
# The DICOM listener's address; like the web server it stays on loopback unless told otherwise.
DICOM_HOST = env_str("RADIOLOGY_DICOM_HOST", HTTP_HOST)
# Listener processes sharing the DICOM port (SO_REUSEPORT): one Python process receives on one core only.
DICOM_PROCESSES = env_int("RADIOLOGY_DICOM_PROCESSES", 1, minimum=1, maximum=64)
HL7_PORT = env_port("RADIOLOGY_HL7_PORT", 2575)
HL7_HOST = env_str("RADIOLOGY_HL7_HOST", HTTP_HOST)
STORAGE_LOCATION = storage_location("RADIOLOGY_STORAGE", DATA_DIR / "archive")
REDIS_URL = redis_url("REDIS_URL")

# The platform is meant to sit behind a reverse proxy that names the public host; set
# DJANGO_ALLOWED_HOSTS (comma separated) there. Loopback names always work.
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver", HTTP_HOST] + [
    host.strip() for host in env_str("DJANGO_ALLOWED_HOSTS", "").split(",") if host.strip()
]
CSRF_TRUSTED_ORIGINS = [
    origin.strip() for origin in env_str("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if origin.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "corsheaders",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "radiology",
    "worklist",
    "archive",
    "reporting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything that can answer on its own (whitenoise, CommonMiddleware): a CORS preflight is answered
    # here, so it never reaches the DICOMweb views and their authentication.
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "radiology.urls"
ASGI_APPLICATION = "radiology.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "radiology.roles.role_context",
            ],
        },
    },
]

DATABASES = {"default": database_config("DATABASE_URL", DATA_DIR / "radiology.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("RADIOLOGY_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Served by whitenoise from the app folders, so `make run` needs no collectstatic step.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# CORS for an external viewer (OHIF) on another origin, DICOMweb and WADO-URI only (docs/dicomweb.md). No
# origins configured: no Access-Control-* header is ever sent. Tokens travel in the Authorization header,
# so cookies are never allowed cross-origin.
CORS_ALLOWED_ORIGINS = env_origins("RADIOLOGY_CORS_ORIGINS")
CORS_URLS_REGEX = r"^/(dicomweb/|wado$)"
CORS_ALLOW_METHODS = ["GET", "HEAD", "POST", "OPTIONS"]
# Accept is listed because a DICOMweb Accept value (`multipart/related; type="..."`) is not CORS-safelisted.
CORS_ALLOW_HEADERS = ["accept", "authorization", "content-type", "if-none-match"]
CORS_EXPOSE_HEADERS = ["ETag", "Warning", "Content-Location"]
CORS_ALLOW_CREDENTIALS = False

# Hardening. TLS is terminated by the reverse proxy (docs/deployment.md); it sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("RADIOLOGY_HTTPS", False)
SESSION_COOKIE_SECURE = SECURE_SSL_REDIRECT
CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT
SECURE_HSTS_SECONDS = 31536000 if SECURE_SSL_REDIRECT else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_SSL_REDIRECT
SECURE_HSTS_PRELOAD = SECURE_SSL_REDIRECT
SESSION_COOKIE_AGE = env_int("RADIOLOGY_SESSION_SECONDS", 8 * 3600, minimum=60)

# Channels: in-process layer on one machine, Redis when scaled out.
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}},
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: Redis as broker when scaled out; otherwise kombu's filesystem transport in the data dir, which needs
# no server and whose worker `serve` runs in-process. The same task code runs either way.
TASK_QUEUE_DIR = DATA_DIR / "tasks"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    for _folder in ("queue", "processed", "failed", "control"):
        (TASK_QUEUE_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    # kombu's filesystem transport with atomic message files; an unreadable message goes to tasks/failed instead
    # of stopping the worker (radiology/task_queue.py).
    CELERY_BROKER_TRANSPORT = "radiology.task_queue:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(TASK_QUEUE_DIR / "queue"),
        "data_folder_out": str(TASK_QUEUE_DIR / "queue"),
        "processed_folder": str(TASK_QUEUE_DIR / "processed"),
        "failed_folder": str(TASK_QUEUE_DIR / "failed"),
        "store_processed": False,
        # The exchanges' binding tables; kombu's default is ./control in whatever directory the process started in.
        "control_folder": str(TASK_QUEUE_DIR / "control"),
    }
    # A message folder the worker cannot use for a moment (a full disk, a folder removed) raises kombu's
    # ChannelError: reconnect and retry rather than stop the worker and with it `serve`.
    CELERY_BROKER_CHANNEL_ERROR_RETRY = True
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged when it has run, so a worker killed mid-task leaves it to be redone.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# How long a component may stay silent before /healthz calls it down.
HEARTBEAT_SECONDS = 5
HEARTBEAT_STALE_SECONDS = 30

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["radiology.api.permissions.ModelPermissionsIncludingView"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Radiology platform API",
    "DESCRIPTION": "PACS, RIS and reporting: REST API for EHRs and scripts.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets used by several fields get one schema name each.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "worklist.choices.OrderStatus",
        "StepStatusEnum": "worklist.choices.StepStatus",
        "PriorityEnum": "worklist.choices.Priority",
        "ReportStatusEnum": "reporting.choices.ReportStatus",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("RADIOLOGY_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": "WARNING"},
        "kombu": {"level": "WARNING"},
        "kombu.connection": {"level": "ERROR"},
        # pynetdicom logs every association and message at INFO; the listener logs what an operator needs.
        "pynetdicom": {"level": "WARNING"},
    },
}

# whitenoise serves files with a synchronous iterator, which Django's ASGI handler warns about on every file.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")

# What a second copy of a stored SOP Instance UID with different content does: keep-first (answer warning
# 0xB006 and record an ingest event), replace, or reject (failure 0x0111). See docs/archive.md.
ARCHIVE_DUPLICATE_POLICY = env_choice("RADIOLOGY_DUPLICATE_POLICY", "keep-first", ["keep-first", "replace", "reject"])

# Sending to and pulling from remote DICOM nodes (archive/tasks.py, docs/archive.md): how many times a transfer
# is retried when the node is unreachable, the first wait in seconds (doubled on every retry), and how long
# routing waits for a series to stop arriving before it forwards the series in one association.
TRANSFER_MAX_RETRIES = env_int("RADIOLOGY_TRANSFER_MAX_RETRIES", 6, minimum=0, maximum=100)
TRANSFER_RETRY_SECONDS = env_int("RADIOLOGY_TRANSFER_RETRY_SECONDS", 30, minimum=0)
ROUTING_DELAY_SECONDS = env_int("RADIOLOGY_ROUTING_DELAY_SECONDS", 5, minimum=0)

# RIS (worklist app)
ACCESSION_FORMAT = env_accession_format("RADIOLOGY_ACCESSION_FORMAT", "{year}{number:06d}")

# Reporting: results out (reporting/outbound.py, docs/reporting.md). An ORU^R01 that is not acknowledged is tried
# again after RETRY_SECONDS, doubled on every attempt up to MAX_RETRY_SECONDS; after MAX_ATTEMPTS it becomes a
# dead letter and the administrators are alerted.
OUTBOUND_MAX_ATTEMPTS = env_int("RADIOLOGY_OUTBOUND_MAX_ATTEMPTS", 8, minimum=1, maximum=100)
OUTBOUND_RETRY_SECONDS = env_int("RADIOLOGY_OUTBOUND_RETRY_SECONDS", 30, minimum=1)
OUTBOUND_MAX_RETRY_SECONDS = env_int("RADIOLOGY_OUTBOUND_MAX_RETRY_SECONDS", 3600, minimum=1)
OUTBOUND_TIMEOUT_SECONDS = env_int("RADIOLOGY_OUTBOUND_TIMEOUT_SECONDS", 30, minimum=1)
# MSH-3 / MSH-4 of the messages the platform sends.
HL7_SENDING_APPLICATION = env_str("RADIOLOGY_HL7_SENDING_APPLICATION", "RADIOLOGY")
HL7_SENDING_FACILITY = env_str("RADIOLOGY_HL7_SENDING_FACILITY", "")
# Critical results (reporting/critical.py): unacknowledged after this many minutes, a critical result escalates
# to RADIOLOGY_CRITICAL_ESCALATION_EMAIL (a department phone/pager gateway or the on-call radiologist's address).
CRITICAL_ESCALATION_MINUTES = env_int("RADIOLOGY_CRITICAL_ESCALATION_MINUTES", 30, minimum=1)
CRITICAL_ESCALATION_EMAIL = env_str("RADIOLOGY_CRITICAL_ESCALATION_EMAIL", "")
# How often the periodic tasks look for escalations due and for outbound messages whose retry time has come.
CRITICAL_ESCALATION_CHECK_SECONDS = env_int("RADIOLOGY_CRITICAL_ESCALATION_CHECK_SECONDS", 60, minimum=1)
OUTBOUND_CHECK_SECONDS = env_int("RADIOLOGY_OUTBOUND_CHECK_SECONDS", 30, minimum=1)
# Periodic tasks: `celery beat` runs them when scaled out; `manage.py serve` runs the same schedule in a beat
# thread beside its worker (radiology/server.py). Both are safe to run twice at once: each escalation and each
# message attempt is claimed with a conditional UPDATE.
CELERY_BEAT_SCHEDULE = {
    "escalate-critical-results": {"task": "reporting.critical_tasks.escalate_overdue_critical_results",
                                  "schedule": float(CRITICAL_ESCALATION_CHECK_SECONDS)},
    "deliver-due-outbound-messages": {"task": "reporting.distribution_tasks.deliver_due_outbound_messages",
                                      "schedule": float(OUTBOUND_CHECK_SECONDS)},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "beat-schedule")
# Task modules that are not an app's tasks.py (reporting keeps these apart from dictation's tasks).
CELERY_IMPORTS = ["reporting.distribution_tasks", "reporting.critical_tasks"]

# E-mail (critical results): SMTP when RADIOLOGY_EMAIL_HOST is set; otherwise each message is written as a file
# under <data dir>/mail, so a one-machine install loses no notification it could not send.
EMAIL_HOST = env_str("RADIOLOGY_EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_port("RADIOLOGY_EMAIL_PORT", 25)
    EMAIL_HOST_USER = env_str("RADIOLOGY_EMAIL_USER", "")
    EMAIL_HOST_PASSWORD = env_str("RADIOLOGY_EMAIL_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("RADIOLOGY_EMAIL_TLS", False)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(DATA_DIR / "mail")
DEFAULT_FROM_EMAIL = env_str("RADIOLOGY_EMAIL_FROM", "radiology@localhost")
# The address people reach the portal at (behind the reverse proxy), for links in e-mails.
PUBLIC_URL = env_str("RADIOLOGY_PUBLIC_URL", f"http://{HTTP_HOST}:{HTTP_PORT}").rstrip("/")

# Dictation (reporting/dictation/, docs/reporting.md). The backend that turns uploaded audio into text: pocketsphinx
# (offline, with the bundled radiology vocabulary), http (an external service such as a Whisper server, at
# RADIOLOGY_SPEECH_HTTP_URL with an optional bearer token) or browser (the browser's own recognition; no audio is
# uploaded). Uploads longer or larger than the limits are refused. Audio is kept with the draft and deleted
# RADIOLOGY_DICTATION_RETENTION_DAYS after the report is signed (`manage.py purge_dictation_audio`).
SPEECH_BACKEND = env_choice("RADIOLOGY_SPEECH_BACKEND", "pocketsphinx", ["pocketsphinx", "http", "browser"])
SPEECH_HTTP_URL = env_str("RADIOLOGY_SPEECH_HTTP_URL", "")
SPEECH_HTTP_TOKEN = env_str("RADIOLOGY_SPEECH_HTTP_TOKEN", "")
SPEECH_HTTP_MODEL = env_str("RADIOLOGY_SPEECH_HTTP_MODEL", "whisper-1")
SPEECH_HTTP_TIMEOUT_SECONDS = env_int("RADIOLOGY_SPEECH_HTTP_TIMEOUT", 60, minimum=1, maximum=3600)
if SPEECH_BACKEND == "http" and not SPEECH_HTTP_URL.startswith(("http://", "https://")):
    from radiology.config import ConfigError

    raise ConfigError(f"RADIOLOGY_SPEECH_HTTP_URL must be the speech service's http(s):// address when "
                      f"RADIOLOGY_SPEECH_BACKEND=http (got {SPEECH_HTTP_URL!r})")
DICTATION_AUDIO_DIR = DATA_DIR / "dictation"
DICTATION_MAX_SECONDS = env_int("RADIOLOGY_DICTATION_MAX_SECONDS", 600, minimum=1)
DICTATION_MAX_BYTES = env_int("RADIOLOGY_DICTATION_MAX_MB", 25, minimum=1) * 1024 * 1024
DICTATION_RETENTION_DAYS = env_int("RADIOLOGY_DICTATION_RETENTION_DAYS", 30, minimum=0)
# Hourly: audio whose retention has passed is deleted within the hour; every five minutes, transcriptions whose task
# was lost are queued again (reporting/tasks.py).
CELERY_BEAT_SCHEDULE["purge-dictation-audio"] = {"task": "reporting.tasks.purge_dictation_audio", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["requeue-stalled-dictations"] = {"task": "reporting.tasks.requeue_stalled_dictations",
                                                      "schedule": 300.0}
