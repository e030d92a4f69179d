import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"


@pytest.fixture(scope="session")
def corpus():
    """The real-data corpus: skipped when AGGREGATOR_CORPUS is unset, an error when it is wrong."""
    value = os.environ.get("AGGREGATOR_CORPUS")
    if not value:
        pytest.skip("AGGREGATOR_CORPUS is not set")
    path = Path(value)
    if not path.is_dir() or not (path / "news").is_dir():
        pytest.fail(f"AGGREGATOR_CORPUS={value} is not a corpus folder (no news/ inside)")
    return path


@pytest.fixture
def seeds_dir():
    return SEEDS


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache: cached responses must not leak between tests."""
    from django.core.cache import cache

    cache.clear()
