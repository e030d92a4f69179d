from importlib import import_module
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

UNINDEXED = import_module("articles.migrations.0006_drop_unused_indexes").UNINDEXED


@pytest.mark.django_db
def test_no_missing_migrations():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out)
    except SystemExit as exit_:  # makemigrations --check exits 1 on pending changes
        pytest.fail(f"models have changes without migrations:\n{out.getvalue()} ({exit_})")


def _app_indexes(unique=False):
    """{(table, name): info} of the app's indexes (and unique constraints, if asked)."""
    with connection.cursor() as cursor:
        return {
            (table, name): info
            for table in connection.introspection.table_names(cursor)
            if table.startswith("articles_")
            for name, info in connection.introspection.get_constraints(cursor, table).items()
            if (info["index"] or (unique and info["unique"]))
            and info["columns"]
            and not info["primary_key"]
        }


def _index_columns():
    """{(table, index name): columns} of every index of the app."""
    return {key: tuple(info["columns"]) for key, info in _app_indexes().items()}


@pytest.mark.django_db
def test_no_index_only_repeats_the_leading_columns_of_another():
    """Every index costs each write of its table: one whose columns lead another
    index or unique constraint serves no lookup the longer one can't."""
    constraints = {
        key: tuple(info["columns"])
        for key, info in _app_indexes(unique=True).items()
        # PostgreSQL's "_like" twins use another operator class (for LIKE 'x%').
        if not key[1].endswith("_like")
    }
    plain = {key for key, info in _app_indexes().items() if not info["unique"]}
    covered = [
        f"{table}.{name} {columns}"
        for (table, name), columns in constraints.items()
        if (table, name) in plain
        and any(
            other != (table, name) and other[0] == table and more[: len(columns)] == columns
            for other, more in constraints.items()
        )
    ]
    assert covered == []


@pytest.mark.django_db(transaction=True)
def test_the_index_migration_drops_only_unused_indexes_and_gives_them_back():
    """0006 drops indexes without copying tables; undone, it must restore every one."""
    before_migration = [("articles", "0005_article_event")]
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("articles")
    try:
        MigrationExecutor(connection).migrate(before_migration)
        before = _index_columns()
        MigrationExecutor(connection).migrate(latest)
        after = _index_columns()
        MigrationExecutor(connection).migrate(before_migration)
        undone = _index_columns()
    finally:
        MigrationExecutor(connection).migrate(latest)

    unindexed = set()
    for model_name, field_name in UNINDEXED:
        meta = apps.get_model("articles", model_name)._meta
        unindexed.add((meta.db_table, (meta.get_field(field_name).column,)))
    dropped = {key: columns for key, columns in before.items() if key not in after}
    assert set(after) < set(before)
    assert {(table, columns) for (table, _), columns in dropped.items()} == unindexed
    assert undone == before
    # What the starting point cannot show: the models' own indexes survive, and
    # PostgreSQL's LIKE twin of source_key goes and comes back with it.
    declared = {
        index.name
        for model in apps.get_app_config("articles").get_models()
        for index in model._meta.indexes
    }
    assert declared <= {name for _, name in after}
    if connection.vendor == "postgresql":
        assert any(name.endswith("_like") for _, name in dropped)
