"""Create the four role groups (clinician, radiologist, technologist, administrator) with their permissions."""
from django.contrib.auth.management import create_permissions
from django.db import migrations

from radiology.roles import sync_role_permissions


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; create them now so the groups get theirs.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    sync_role_permissions(apps)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(
        name__in=["clinician", "radiologist", "technologist", "administrator"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("radiology", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
