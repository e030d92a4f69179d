"""The production settings plus the benchmark's floor view (see bench/urls.py).

Only the benchmark servers use this module; the site itself never mounts the view.
"""

from aggregator.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
