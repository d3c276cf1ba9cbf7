"""Storno settings. Everything that differs between machines comes from the environment.

The defaults run on one machine with nothing else installed: SQLite and Kombu's filesystem
broker under ./var. Point DATABASE_URL at PostgreSQL and CELERY_BROKER_URL at Redis or RabbitMQ
to run many web and worker processes.
"""

import os
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from backoffice.log_format import logging_config
from backoffice.settings_env import BASE_DIR, VAR_DIR, env_bool, env_list

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Where staff reach Storno; links sent to providers (JS7's auditLog ticketLink) start with it.
STORNO_PUBLIC_URL = os.environ.get("STORNO_PUBLIC_URL", "http://localhost:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "csp",
    "backoffice",
    "reasons",
    "cancellations",
    "providers",
]

MIDDLEWARE = [
    # First: every other middleware's log lines carry the request id (backoffice.request_id).
    "backoffice.request_id.RequestIdMiddleware",
    # Latency per view for /metrics (backoffice.metrics).
    "backoffice.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # An unknown /api/ path is a problem object in DEBUG too (handler404 answers it otherwise).
    "backoffice.views.ApiNotFoundMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "backoffice.middleware.UserTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a login locked out by django-axes into the lockout page (backoffice.security).
    "axes.middleware.AxesMiddleware",
    # A lost database connection is a 503 with Retry-After, not a 500.
    "backoffice.middleware.DatabaseUnavailableMiddleware",
    # Last, so every other middleware also handles the responses it answers or replays itself.
    "backoffice.idempotency.IdempotencyKeyMiddleware",
]

ROOT_URLCONF = "backoffice.urls"
WSGI_APPLICATION = "backoffice.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# Persistent connections: a process keeps its connection for CONN_MAX_AGE seconds (0: a new one
# per request) instead of paying a new PostgreSQL backend, with cold caches, every request. A
# kept connection is checked (SELECT 1) before its first use in each request or task.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'storno.sqlite3'}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # IMMEDIATE takes SQLite's write lock at BEGIN, so two transactions that both read then write
    # (two cancels of one order) queue up instead of failing; select_for_update is a no-op here.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"}
    )
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
# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Keeps each user's permissions for PERMISSIONS_MAX_AGE seconds, so an API request doesn't
    # read them again (two queries) every time; logs nobody in.
    "backoffice.auth_backends.CachedModelBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Languages and time ---------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("de", _("German")), ("tr", _("Turkish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security (production defaults; each can be relaxed from the environment) ---------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Probes and Prometheus ask over plain HTTP from inside the network, and don't follow redirects.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True  # X-Content-Type-Options: nosniff
SECURE_REFERRER_POLICY = "same-origin"  # links to other sites do not carry Storno's URLs
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): scripts, styles and everything else from Storno's own
# origin only; no inline script or style attribute runs (json_script blocks are data, not
# code), no plugin, no other site may frame a page, forms post back to Storno only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# How many proxies in front of Storno append to X-Forwarded-For: the client address that login
# lockouts and API throttles count is the one the nearest trusted proxy saw. 0 trusts no
# header at all (a client could otherwise pick its own address per request).
TRUSTED_PROXY_COUNT = int(
    os.environ.get("TRUSTED_PROXY_COUNT", "1" if env_bool("BEHIND_TLS_PROXY", False) else "0")
)

# Login lockout (django-axes): after AXES_FAILURE_LIMIT failed logins for one username from one
# address, that pair is refused for LOGIN_LOCKOUT_MINUTES; after LOGIN_ADDRESS_FAILURE_LIMIT
# failures from one address across user names (password spraying), the whole address is
# (backoffice.security.LoginFailureHandler). Refused tries while locked write nothing (no new
# attempt row per guessed user name) and don't restart the cool-off.
# Covers the staff login page, the admin login and HTTP Basic on the API. Attempts live in the
# database, so every web process sees the same count.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
LOGIN_ADDRESS_FAILURE_LIMIT = int(os.environ.get("LOGIN_ADDRESS_FAILURE_LIMIT", "20"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "backoffice.security.LoginFailureHandler"
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "backoffice.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "backoffice.security.client_ip"

# --- Cache ----------------------------------------------------------------------------------
# API throttles count requests in the default cache, so every web process must share it (a
# per-process cache would multiply each limit by the number of gunicorn workers). The database
# is the state every process shares already and keeps working while a broker is away, so it
# holds the cache, in a table that `manage.py migrate` creates. CACHE_REDIS_URL moves it to Redis.
if os.environ.get("CACHE_REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["CACHE_REDIS_URL"],
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "storno_cache",
            # Room for a throttle history per user and client address before culling.
            "OPTIONS": {"MAX_ENTRIES": 20000},
        }
    }

# --- Django REST framework ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes a missing credential a 401, not a 403.
        # DRF's, with refused credentials counted per address (backoffice.authentication).
        "backoffice.authentication.TokenAuthentication",
        "backoffice.authentication.BasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["backoffice.permissions.FullDjangoModelPermissions"],
    # The hardened parser (depth, size, duplicate keys, NaN…): no view falls back to DRF's.
    "DEFAULT_PARSER_CLASSES": ["backoffice.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "backoffice.api.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "backoffice.api.problem_exception_handler",
    # Per user, per anonymous address, and stricter for the views that name a throttle_scope
    # (bulk cancellation); 429 with Retry-After. DRF's classes with atomic counters (Redis, or
    # a database table when the cache is the database): see backoffice.throttling.
    "DEFAULT_THROTTLE_CLASSES": [
        "backoffice.throttling.AnonRateThrottle",
        "backoffice.throttling.UserRateThrottle",
        "backoffice.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "30/min"),
        "user": os.environ.get("API_THROTTLE_USER", "600/min"),
        "bulk-cancel": os.environ.get("API_THROTTLE_BULK_CANCEL", "10/min"),
        # Refused Authorization headers per client address (backoffice.authentication).
        "failed-auth": os.environ.get("API_THROTTLE_FAILED_AUTH", "10/min"),
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_SCHEMA_CLASS": "backoffice.openapi.ErrorsSchema",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Storno API",
    "DESCRIPTION": (
        "Order cancellations for other apps. Errors are RFC 7807 problem objects: "
        "`{type, title, status, detail, invalidFields: [{field, message, code}]}`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from our own static files, not a CDN: the docs work offline and under the CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several resources have a `status` with their own values: one enum name each.
    "ENUM_NAME_OVERRIDES": {
        "BulkCancellationStatusEnum": "cancellations.models.BulkCancellationStatus",
        "OrderStatusEnum": "cancellations.states.OrderStatus.choices",
        "CancellationStatusEnum": "cancellations.states.CancellationStatus.choices",
        "ProviderVerdictReasonEnum": "providers.base.VERDICT_REASONS",
        "ReasonEnum": "reasons.models.REBILLY_REASONS",  # Rebilly's, beside the verdicts' reason
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "backoffice.idempotency_openapi.document_idempotency_key",
    ],
}
# How long an API POST's Idempotency-Key and its response are kept (backoffice.idempotency).
IDEMPOTENCY_KEY_TTL_HOURS = int(os.environ.get("IDEMPOTENCY_KEY_TTL_HOURS", "24"))

# --- Metrics --------------------------------------------------------------------------------
# GET /metrics (backoffice.metrics): with METRICS_TOKEN set, for `Authorization: Bearer <it>`;
# without, from this machine only. PROMETHEUS_MULTIPROC_DIR (read by prometheus-client itself,
# from the environment) makes every process's counters add up: `make serve` sets it.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "").strip()

# --- Celery ---------------------------------------------------------------------------------
# Celery, its beat schedule, bulk batches and provider deliveries: backoffice/settings_celery.py.
from backoffice.settings_celery import *  # noqa: E402, F403

# --- Callisto -------------------------------------------------------------------------------
# Callisto's CancelDate (Y-m-d) and CancelTimestamp (Y-m-d H:i:s) carry no zone: they are read
# and written in this one (providers/callisto.py, providers/inbound_callisto.py).
CALLISTO_TIME_ZONE = os.environ.get("CALLISTO_TIME_ZONE", "").strip() or "Europe/Berlin"
try:
    ZoneInfo(CALLISTO_TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError) as exc:
    raise ImproperlyConfigured(
        f"CALLISTO_TIME_ZONE must be an IANA time zone name: {CALLISTO_TIME_ZONE!r}"
    ) from exc
# The Salesforce user id sent as UserId when the cancellation has none of its own; empty means
# such a cancellation of an order Callisto knows is refused when it is made.
CALLISTO_DEFAULT_USER_ID = os.environ.get("CALLISTO_DEFAULT_USER_ID", "").strip()

# --- Logging --------------------------------------------------------------------------------
# LOG_FORMAT=json: one JSON object per line (timestamp, level, logger, event, request_id and any
# extra fields) for a log shipper; plain (the default) for a terminal. Every line carries the
# request id, and credentials are blanked before anything is written (backoffice.log_format).
# The Celery worker and beat log through this too (backoffice.celery).
try:
    LOGGING = logging_config(
        log_format=os.environ.get("LOG_FORMAT", "").strip().lower() or "plain",
        level=os.environ.get("LOG_LEVEL", "INFO"),
    )
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from exc
