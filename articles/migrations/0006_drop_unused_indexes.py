"""Drop indexes no query needs: each costs every write of its table.

Foreign keys whose column leads a composite index or a unique constraint, and
Article.source_key (loads look files up by SourceFile.key). The fields change
in the migration state only; the database just drops the indexes, where
AlterField would copy each table on SQLite (about a minute and 40% more file
for a 100,000-file database).
"""

import django.db.models.deletion
from django.db import migrations, models

# (model, field) whose own index goes.
UNINDEXED = [
    ("article", "cluster"),
    ("article", "provider"),
    ("article", "source_key"),
    ("articletopic", "article"),
    ("articletopic", "topic"),
    ("clustertopic", "cluster"),
    ("clustertopic", "topic"),
    ("relatedlisting", "source"),
    ("relatedlisting", "target"),
]


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
                migrations.AlterField(
                    model_name="article",
                    name="cluster",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="articles",
                        to="articles.cluster",
                    ),
                ),
                migrations.AlterField(
                    model_name="article",
                    name="provider",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="articles",
                        to="articles.provider",
                    ),
                ),
                migrations.AlterField(
                    model_name="article",
                    name="source_key",
                    field=models.CharField(blank=True, max_length=1024),
                ),
                migrations.AlterField(
                    model_name="articletopic",
                    name="article",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="articles.article",
                    ),
                ),
                migrations.AlterField(
                    model_name="articletopic",
                    name="topic",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="articles.topic",
                    ),
                ),
                migrations.AlterField(
                    model_name="clustertopic",
                    name="cluster",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="articles.cluster",
                    ),
                ),
                migrations.AlterField(
                    model_name="clustertopic",
                    name="topic",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="articles.topic",
                    ),
                ),
                migrations.AlterField(
                    model_name="relatedlisting",
                    name="source",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="listings",
                        to="articles.article",
                    ),
                ),
                migrations.AlterField(
                    model_name="relatedlisting",
                    name="target",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="listed_in",
                        to="articles.article",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, restore_indexes)],
        ),
    ]
