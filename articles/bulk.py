"""Helpers for the bulk work of loads and rebuilds.

Many rows in one prepared statement: loads and clustering write thousands of
rows at a time; Django's bulk methods compile every value of every row into SQL
in Python (``bulk_update`` a CASE expression per field and row), which costs
more than the database work.
"""

import gc
from contextlib import contextmanager
from datetime import UTC

from django.db import connections, router

# A young-generation collection every 50,000 net allocations instead of 700, and
# older ones correspondingly rarer.
BULK_GC_THRESHOLD = (50_000, 20, 20)
# Keys per query when new ids are read back: databases cap a query's parameters.
READ_BACK_BATCH = 2000
_bulk_depth = 0


@contextmanager
def fewer_collections():
    """Run bulk work with the cyclic garbage collector walking far less.

    A load keeps many containers alive at once (Django's modules, a batch of
    parsed files, the rebuild's postings) and makes few cycles; with the default
    thresholds the collector walks them again and again and finds nothing: an
    eighth of a 10,000-file load's time. What is alive before is frozen (never
    walked) until the work ends; forked parse workers inherit both settings.
    """
    global _bulk_depth  # noqa: PLW0603 -- nested bulk work must not thaw the outer's freeze
    outermost = _bulk_depth == 0
    if outermost:
        previous = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(*BULK_GC_THRESHOLD)
    _bulk_depth += 1
    try:
        yield
    finally:
        _bulk_depth -= 1
        if outermost:
            gc.set_threshold(*previous)
            gc.unfreeze()


def _column_values(fields, connection):
    """Database values of ``fields`` for one row, a dict of attribute names to values.

    Dates and JSON go straight to the backend's adapters: ``get_db_prep_save``
    first re-validates each value, which costs more than the insert. Every caller
    passes aware datetimes (parsed by the loader or read back from the database),
    so nothing it checks can differ.
    """
    ops = connection.ops
    adapters = {
        "DateTimeField": lambda column: _datetime_adapter(connection),
        "DateField": lambda column: ops.adapt_datefield_value,
        "JSONField": lambda column: lambda value: ops.adapt_json_value(value, column.encoder),
        "DecimalField": lambda column: lambda value: column.get_db_prep_save(value, connection),
    }
    plan = []
    for column in fields:
        adapter = adapters.get(column.get_internal_type())
        plan.append((column.attname, adapter(column) if adapter else None))
    return lambda row: [row[name] if adapt is None else adapt(row[name]) for name, adapt in plan]


def _datetime_adapter(connection):
    """The backend's datetime adapter, with a shortcut for UTC on SQLite.

    SQLite stores naive UTC text; Django's adapter checks settings and converts
    time zones for each value, twice the cost of the text itself for the UTC
    datetimes loads and rebuilds write by the hundred thousand.
    """
    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor != "sqlite" or connection.timezone is not UTC:
        return adapt

    def utc_text(value):
        if value is not None and value.tzinfo is UTC:
            return value.replace(tzinfo=None).isoformat(" ")
        return adapt(value)

    return utc_text


def column_defaults(model):
    """Every column of a new ``model`` row as Django fills it, by attribute name:
    plain rows for ``insert_rows`` start from these (callable defaults are called now)."""
    return {column.attname: column.get_default() for column in model._meta.concrete_fields}


def insert_rows(model, rows, *, ids_by=None):
    """INSERT many new rows with one prepared statement.

    ``rows`` are model instances or dicts of every column's attribute name: the
    loader's most numerous rows skip building a model instance each. ``bulk_create``
    compiles every value of every row into SQL in Python, which costs more than
    the inserts themselves.

    With ``ids_by``, the name of a unique field every row sets, returns the new
    primary keys in row order: SQLite tells them inside a transaction (see
    below); elsewhere they are read back by that field. Else returns None.
    """
    rows = [row if isinstance(row, dict) else vars(row) for row in rows]
    if not rows:
        return []
    meta = model._meta
    columns = [column for column in meta.concrete_fields if not column.primary_key]
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    names = ", ".join(quote(column.column) for column in columns)
    marks = ", ".join(["%s"] * len(columns))
    # Identifiers come from model metadata, quoted; every value is a parameter.
    sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608
    values = _column_values(columns, connection)
    with connection.cursor() as cursor:
        cursor.executemany(sql, [values(row) for row in rows])
        if ids_by is None:
            return None
        if connection.vendor == "sqlite" and connection.in_atomic_block:
            cursor.execute("SELECT last_insert_rowid()")
            [(last,)] = cursor.fetchall()
            # SQLite gives each new row one more than the highest id the table has
            # used, and inside a transaction no other connection writes until it
            # ends: the rows of one executemany take consecutive ids, the last one's last.
            return list(range(last - len(rows) + 1, last + 1))
    keys = [row[ids_by] for row in rows]
    by_key = {}
    for start in range(0, len(keys), READ_BACK_BATCH):
        part = keys[start : start + READ_BACK_BATCH]
        by_key.update(
            model._default_manager.filter(**{f"{ids_by}__in": part}).values_list(ids_by, "pk")
        )
    return [by_key[key] for key in keys]


def update_rows(model, objects, fields):
    """Save ``fields`` of many rows with one prepared UPDATE run per row.

    ``bulk_update`` builds a CASE expression per field and row, which costs far
    more than the database work for the few hundred rows of a chunk.
    """
    objects = list(objects)
    if not objects:
        return
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(column.column)} = %s" for column in columns)
    # Identifiers come from model metadata, quoted; every value is a parameter.
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    values = _column_values(columns, connection)
    with connection.cursor() as cursor:
        cursor.executemany(sql, [[*values(vars(obj)), obj.pk] for obj in objects])
