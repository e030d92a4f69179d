"""The Editors group: decide what is public, correct clusters, edit descriptions.

Editors may view every editorial model and change stories (only ``published`` is
editable in the admin), clusters (merge and split), topics and providers
(descriptions). They get no delete permission and nothing from ``auth``.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP_NAME = "Editors"
PERMISSIONS = [
    "view_article",
    "change_article",
    "view_articleimage",
    "view_relatedlisting",
    "view_cluster",
    "change_cluster",
    "view_provider",
    "change_provider",
    "view_topic",
    "change_topic",
    "view_moderationevent",
]


def create_editors_group(apps, schema_editor):
    # Permissions are normally created after migrate finishes; this migration needs them now.
    app_config = apps.get_app_config("articles")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP_NAME)
    group.permissions.set(
        Permission.objects.filter(content_type__app_label="articles", codename__in=PERMISSIONS)
    )


def remove_editors_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("articles", "0002_content_version_row"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_editors_group, remove_editors_group)]
