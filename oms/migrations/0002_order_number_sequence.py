"""Create the PostgreSQL sequence that numbers orders (SQLite uses the NumberSequence table instead)."""

from django.db import migrations

SEQUENCE = "oms_order_number_seq"


def create_sequence(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} START 100001")


def drop_sequence(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


class Migration(migrations.Migration):
    dependencies = [("oms", "0001_initial")]
    operations = [migrations.RunPython(create_sequence, drop_sequence)]
