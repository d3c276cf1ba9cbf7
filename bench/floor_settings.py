"""The settings of bench/api_load.py's gunicorn: the project's own, plus the floor endpoint.

Only the benchmark selects this module (DJANGO_SETTINGS_MODULE=bench.floor_settings), so
production never serves /bench/floor/.
"""

from backoffice.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
