"""Gunicorn settings from the environment; gunicorn reads this file from the working directory.

Every value comes from a GUNICORN_* variable (see the README); the defaults suit one box.
"""

import importlib
import multiprocessing
import os

# Check the settings in the master process: a production configuration that
# must not start (DEBUG on, no secret key) stops gunicorn with its message,
# instead of every worker failing to boot in turn.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aggregator.settings")
importlib.import_module(os.environ["DJANGO_SETTINGS_MODULE"])

wsgi_app = "aggregator.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
workers = int(os.environ.get("GUNICORN_WORKERS") or multiprocessing.cpu_count() * 2 + 1)
threads = int(os.environ.get("GUNICORN_THREADS", 1))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
# Recycle workers now and then so a slow leak can never take a box down.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 1000))
# Workers serve at the same rate, so a narrow jitter restarts them all within a
# second of each other and the box answers nothing meanwhile; spread them wide.
max_requests_jitter = max_requests // 2
# An empty GUNICORN_ACCESS_LOG turns the access log off.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"
# The control socket's default path is one per user, which several servers on
# one box would fight over; nothing here uses it.
control_socket_disable = True
