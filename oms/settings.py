"""One settings module for every mode, read from environment variables.

Unset variables give the embedded trial setup (SQLite in var/, a file-system Celery broker, DEBUG on);
setting DATABASE_URL / REDIS_URL switches to PostgreSQL and Redis; DJANGO_DEBUG=0 turns on the
production hardening that `manage.py check --deploy` expects.
"""

import hashlib
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from oms.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("OMS_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", True)

_DEV_SECRET = "dev-only-not-secret-order-hub-change-me-in-production-0123456789abcdef"
SECRET_KEY = env_str("DJANGO_SECRET_KEY", _DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

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
    "django_htmx",
    "csp",
    "axes",
    # Database triggers declared on models (the payment snapshot refuses UPDATE and DELETE on PostgreSQL).
    "pgtrigger",
    "oms",
    "orders",
    "inventory",
    "fulfillment",
    "aftersales",
    "connectors",
    "finance",
    "printing",
    "pipeline",
    # The desk and the buyers' API sit above the domain apps: they read across them.
    "desk",
    "customer",
    # Demo data for `make run` (the demo_data and demo_logins commands) and the benchmarks (`manage.py bench`,
    # their URL map bench.urls only with OMS_BENCH_BARE_WEBHOOK): the top layer, nothing imports them.
    "demo",
    "bench",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response, the guard's refusals included (oms/headers.py).
    "oms.headers.ProjectCSPMiddleware",
    # Before anything reads the session, the user or the body: a NUL never reaches PostgreSQL (400 instead).
    "oms.middleware.InputGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "oms.middleware.DefaultChineseLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After authentication: no-store on what a signed-in user sees, and the Permissions-Policy.
    "oms.headers.PrivacyHeadersMiddleware",
    # The trial runs with DEBUG on; its 404 must not list every URL pattern to the LAN.
    "oms.middleware.ProjectNotFoundPageMiddleware",
    # Last, as django-axes asks: it turns a refused login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "oms.urls"
WSGI_APPLICATION = "oms.wsgi.application"

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
                # escalated_tickets_count for managers (the notice in base.html); no query for anyone else.
                "aftersales.context_processors.escalated_tickets",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite (the trial default) runs in WAL mode with a busy timeout and IMMEDIATE transactions, so the
# web server and the Celery worker can write at the same time without "database is locked" errors.
_SQLITE_PATH = VAR_DIR / "oms.sqlite3"
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _SQLITE_PATH,
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
            },
        }
    }
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Named after the checkout, so two checkouts on one machine never share (and drop) one test database.
    _CHECKOUT_TAG = hashlib.sha1(str(BASE_DIR).encode()).hexdigest()[:8]
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env_str("DATABASE_TEST_NAME", f"test_oms_{_CHECKOUT_TAG}")
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "orders:list"
LOGOUT_REDIRECT_URL = "login"
# Brute-force lockout (django-axes): after OMS_LOGIN_FAILURE_LIMIT wrong passwords for one username from one address,
# even the right password is refused there for 15 minutes (429 and the lockout page). Locking on the pair, not the
# address alone, keeps a whole office behind one IP from being locked out by one typist.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("OMS_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429

# --- I18N / time ----------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"  # display zone; storage is always UTC (USE_TZ)

# --- Static ---------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security (production) ------------------------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
    # Only for a plain-HTTP demo on a closed LAN (README, "Exposing the trial"): without HTTPS a browser
    # drops secure cookies and nobody can log in. Real use goes behind a TLS proxy and keeps this on.
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# django-csp 4 format. Sent in every mode (the trial too, so it proves the pages work under it): scripts
# and styles come only from our own static files (no inline handlers, no style= attributes; htmx's
# indicator style lives in app.css). data: images are for Swagger UI's icons. The API documentation
# pages get their inline script and style in oms/headers.py.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}
# Health checks come from the load balancer over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so an anonymous call gets 401 with a WWW-Authenticate header rather than 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "oms.api_errors.api_exception_handler",
    # Counted per user session, per API token and per print bridge; print-bridge views use their own scope.
    "DEFAULT_THROTTLE_CLASSES": ["oms.throttles.StaffRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "staff": env_str("OMS_API_RATE_STAFF", "600/min"),
        "print_bridge": env_str("OMS_API_RATE_PRINT_BRIDGE", "6000/min"),
        # The customer API (customer/throttles.py): order proofs per client address and per order number typed,
        # and everything else per address. Ten proofs a minute is plenty for a buyer and slow for a guesser.
        "customer_proof_ip": env_str("OMS_CUSTOMER_RATE_PROOF_IP", "10/min"),
        "customer_proof_order": env_str("OMS_CUSTOMER_RATE_PROOF_ORDER", "10/min"),
        "customer": env_str("OMS_CUSTOMER_RATE", "120/min"),
        "customer_wechat_login": env_str("OMS_CUSTOMER_RATE_WECHAT_LOGIN", "20/min"),
    },
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Order Hub API",
    "DESCRIPTION": "REST API v1 of the order hub (订单中枢).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Tickets share field names (type, reason, status) with orders: their enums get names of their own.
    "ENUM_NAME_OVERRIDES": {
        "TicketTypeEnum": "aftersales.models.TicketType", "TicketReasonEnum": "aftersales.models.TicketReason",
        "TicketStatusEnum": "aftersales.models.TicketStatus", "TicketEventTypeEnum": "aftersales.models.TicketEventType",
        "RefundStatusEnum": "aftersales.models.RefundStatus", "GradeEnum": "aftersales.models.Grade",
        "OrderStatusEnum": "orders.models.OrderStatus", "DeskSearchKindEnum": "desk.selectors.SearchKind",
        "SettlementSourceEnum": "finance.readers.base.SettlementSource", "SourceEnum": "aftersales.models.TicketSource",
    },
    # The schema states the errors every operation may give and what every input refuses (oms/api_schema.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "oms.api_schema.postprocess_schema"],
    # The customer API (/api/customer/) has a schema of its own (/api/customer/v1/schema/); the staff one leaves it out.
    "PREPROCESSING_HOOKS": ["customer.schema.staff_endpoints_only"],
}

# --- Celery ---------------------------------------------------------------------------------
# With REDIS_URL unset the broker is a folder in var/, so a trial run needs no service at all.
if REDIS_URL:
    CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    _BROKER_DIR = VAR_DIR / "celery-broker"
    for _sub in ("out", "processed", "control"):
        (_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
    if CELERY_BROKER_URL == "filesystem://":
        # kombu's file-system transport can hand the worker a half-written file (JSONDecodeError, worker down,
        # message lost); ours publishes whole files (oms/broker.py).
        CELERY_BROKER_TRANSPORT = "oms.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "out"),
        "data_folder_out": str(_BROKER_DIR / "out"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "store_processed": False,
        # Exchange tables; kombu's default is a "control" folder in the current directory (the repository).
        "control_folder": str(_BROKER_DIR / "control"),
        # kombu sleeps this long whenever the worker has its prefetch limit in flight, not only when the queue
        # is empty; the default 1 s capped the worker at about 4 tasks a second (measured by make soak).
        "polling_interval": 0.1,
    }
    # No remote control (pidbox), gossip, mingle or event heartbeats on a file-system broker: they are fan-out
    # files written by every process at once, nothing here needs them (the health page reads the
    # WorkerHeartbeat row), and a killed worker would leave bindings that fill the folder with unread files.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {
    "heartbeat": {"task": "oms.tasks.record_worker_heartbeat_task", "schedule": 30.0},
    # Cancel/timeout releases happen inline or within a minute, well inside the 2-minute promise.
    "cancel-expired-unpaid": {"task": "orders.tasks.cancel_expired_unpaid_orders_task", "schedule": 60.0},
    # Idempotency keys older than IDEMPOTENCY_KEY_TTL_HOURS are no longer replayed; this drops their rows.
    "purge-idempotency-records": {"task": "orders.tasks.purge_idempotency_records_task", "schedule": 3600.0},
    "release-stale-reservations": {"task": "inventory.tasks.release_stale_reservations_task", "schedule": 60.0},
    "retry-awaiting-stock": {"task": "inventory.tasks.retry_awaiting_stock_task", "schedule": 300.0},
    "poll-due-stores": {"task": "connectors.tasks.poll_due_stores_task", "schedule": 10.0},
    "sweep-inbox": {"task": "connectors.tasks.sweep_inbox_task", "schedule": 30.0},
    "purge-refused-deliveries": {"task": "connectors.tasks.purge_refused_deliveries_task", "schedule": 3600.0},
    "flush-channel-stock": {"task": "connectors.tasks.flush_channel_stock_task", "schedule": 5.0},
    "sync-completeness-hourly": {"task": "connectors.tasks.sync_check_task", "schedule": crontab(minute=5)},
    "sweep-shipment-pushes": {"task": "connectors.tasks.sweep_shipment_pushes_task", "schedule": 15.0},
    "sweep-refund-pushes": {"task": "connectors.tasks.sweep_refund_pushes_task", "schedule": 15.0},
    "sweep-waybill-voids": {"task": "fulfillment.tasks.sweep_waybill_voids_task", "schedule": 900.0},
    "pull-tracking": {"task": "fulfillment.tasks.pull_tracking_task", "schedule": 1800.0},
    "flag-stale-tracking": {"task": "fulfillment.tasks.flag_stale_tracking_task", "schedule": 3600.0},
    # Off-line printers are retried within seconds of coming back (backoff is capped at a minute).
    "sweep-print-jobs": {"task": "printing.tasks.sweep_print_jobs_task", "schedule": 10.0},
    "sweep-notifications": {"task": "fulfillment.tasks.sweep_notifications_task", "schedule": 60.0},
    "reconcile-stock-nightly": {"task": "inventory.tasks.reconcile_stock_task",
                                "schedule": crontab(hour=19, minute=30)},  # 03:30 Asia/Shanghai
    # Tickets 48 h (the store's policy) without an update go to a manager; 5 minutes late at most.
    "escalate-stale-tickets": {"task": "aftersales.tasks.escalate_stale_tickets_task", "schedule": 300.0},
    # Settlement imports whose worker died (the lease ran out) or that were never queued are run again.
    "sweep-settlement-imports": {"task": "finance.tasks.sweep_settlement_imports_task", "schedule": 300.0},
}

# --- Logging --------------------------------------------------------------------------------
# Structured one-line logs; the PII filter masks phone numbers and secrets before anything is written.
LOG_LEVEL = env_str("DJANGO_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "mask_pii": {"()": "oms.logging.MaskSensitiveFilter"},
        "one_line_4xx": {"()": "oms.logging.ClientErrorOneLineFilter"},
    },
    "formatters": {
        "structured": {"format": "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "structured",
                    "filters": ["one_line_4xx", "mask_pii"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's DEFAULT_LOGGING gives "django" and "django.server" their own unmasked console
        # handlers (the first only under DEBUG); naming them here replaces those handlers, so every
        # line of Django's is written once, by the masked handler. (No mail_admins: ADMINS is unset.)
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        # Failed logins and lockouts are warnings; axes' INFO lines (a start-up banner in every manage.py
        # command, one per successful login) are noise.
        "axes": {"level": "WARNING"},
    },
}

# --- Product settings -----------------------------------------------------------------------
ORDER_NUMBER_PREFIX = env_str("OMS_ORDER_NUMBER_PREFIX", "SO")
IDEMPOTENCY_KEY_TTL_HOURS = env_int("OMS_IDEMPOTENCY_KEY_TTL_HOURS", 48)
# A parcel in transit without a tracking update for this many days raises an alert for customer service.
OMS_TRACKING_STALE_DAYS = env_int("OMS_TRACKING_STALE_DAYS", 7)
# The customer API: a buyer's token lives this many seconds; an order number typed with a wrong phone this many
# times in a day (Asia/Shanghai) is locked for proofs until the next day; a parcel's public tracking link lives
# this many days.
OMS_CUSTOMER_TOKEN_MAX_AGE = env_int("OMS_CUSTOMER_TOKEN_MAX_AGE", 2 * 3600)
OMS_CUSTOMER_PROOF_DAILY_FAILURES = env_int("OMS_CUSTOMER_PROOF_DAILY_FAILURES", 20)
OMS_TRACKING_LINK_MAX_AGE_DAYS = env_int("OMS_TRACKING_LINK_MAX_AGE_DAYS", 180)
# WeChat login for the mini-program (docs/customer-api.md): the mini-program's app id and secret; login is off
# while either is empty. `make run` points the API base at the local WeChat sandbox.
OMS_WECHAT_APP_ID = env_str("OMS_WECHAT_APP_ID", "")
OMS_WECHAT_APP_SECRET = env_str("OMS_WECHAT_APP_SECRET", "")
OMS_WECHAT_API_BASE = env_str("OMS_WECHAT_API_BASE", "https://api.weixin.qq.com")
OMS_WECHAT_TIMEOUT = env_int("OMS_WECHAT_TIMEOUT", 5)
# A WeChat user stays bound to a buyer this many days after the proof that bound them; then they prove again.
OMS_WECHAT_BINDING_MAX_DAYS = env_int("OMS_WECHAT_BINDING_MAX_DAYS", 90)

# Customer notifications (shipped notices) go out by e-mail. The trial writes them to var/mail; set
# EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and the EMAIL_* variables for a real server.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "orders@example.com")
OMS_BENCH_BARE_WEBHOOK = env_bool("OMS_BENCH_BARE_WEBHOOK", False)  # `bench webhook`: serve the bare webhook view
if OMS_BENCH_BARE_WEBHOOK:
    # The benchmark's URL map (the project's plus the bare webhook view): production never routes to bench code.
    ROOT_URLCONF = "bench.urls"
# Webhook deliveries with a bad or missing signature: per store and source address at most this many a minute
# are recorded (then 429), and their bounded records are purged after this many days.
OMS_REFUSED_WEBHOOK_LIMIT_PER_MINUTE = env_int("OMS_REFUSED_WEBHOOK_LIMIT_PER_MINUTE", 30)
OMS_REFUSED_WEBHOOK_RETENTION_DAYS = env_int("OMS_REFUSED_WEBHOOK_RETENTION_DAYS", 7)
# How many Celery workers one store's inbox drain asks for at most (one per partition with rows waiting, up to
# this): a flash sale on one store is drained by several workers at once (docs/scaling.md).
OMS_INBOX_DRAIN_WORKERS = env_int("OMS_INBOX_DRAIN_WORKERS", 4)
# The debug page and error mails hide *_URL settings (DATABASE_URL, REDIS_URL) and URLs with credentials too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "oms.reporting.OmsExceptionReporterFilter"
