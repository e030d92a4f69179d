"""Drop indexes no query needs: each costs every write of its table.

Foreign keys whose column leads a composite index or a unique constraint, and
Article.source_key (loads look files up by SourceFile.key). The fields change
in the migration state only; the database just drops the indexes, where
AlterField would copy each table on SQLite (about a minute and 40% more file
for a 100,000-file database).
"""

from django.db import migrations, models
from django.db.models import CASCADE, PROTECT, SET_NULL


def _unindexed_key(to, on_delete=CASCADE, **options):
    return models.ForeignKey(db_index=False, on_delete=on_delete, to=f"articles.{to}", **options)


# (model, field) whose own index goes: the field as it is after this migration.
UNINDEXED = {
    ("article", "cluster"): _unindexed_key(
        "cluster", SET_NULL, blank=True, null=True, related_name="articles"
    ),
    ("article", "provider"): _unindexed_key(
        "provider", PROTECT, blank=True, null=True, related_name="articles"
    ),
    ("article", "source_key"): models.CharField(blank=True, max_length=1024),
    ("articletopic", "article"): _unindexed_key("article"),
    ("articletopic", "topic"): _unindexed_key("topic"),
    ("clustertopic", "cluster"): _unindexed_key("cluster"),
    ("clustertopic", "topic"): _unindexed_key("topic"),
    ("relatedlisting", "source"): _unindexed_key("article", related_name="listings"),
    ("relatedlisting", "target"): _unindexed_key("article", related_name="listed_in"),
}


def _single_column_indexes(schema_editor, model, column):
    """Names of the plain indexes on ``column`` alone that Django made for the field."""
    connection = schema_editor.connection
    declared = {index.name for index in model._meta.indexes}
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return [
        name
        for name, info in constraints.items()
        if info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and info["columns"] == [column]
        and name not in declared
    ]


def drop_indexes(apps, schema_editor):
    quote = schema_editor.quote_name
    for model_name, field_name in UNINDEXED:
        model = apps.get_model("articles", model_name)
        column = model._meta.get_field(field_name).column
        for name in _single_column_indexes(schema_editor, model, column):
            schema_editor.execute(f"DROP INDEX {quote(name)}")


def restore_indexes(apps, schema_editor):
    for model_name, field_name in UNINDEXED:
        model = apps.get_model("articles", model_name)
        field = model._meta.get_field(field_name)
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))
        # PostgreSQL gives a text column a LIKE 'x%' twin as well.
        like = getattr(schema_editor, "_create_like_index_sql", None)
        if like and (sql := like(model, field)):
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("articles", "0005_article_event"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name=model_name, name=name, field=field)
                for (model_name, name), field in UNINDEXED.items()
            ],
            database_operations=[migrations.RunPython(drop_indexes, restore_indexes)],
        ),
    ]
