"""Create the PostgreSQL sequence that numbers after-sales tickets (SQLite uses the NumberSequence table)."""

from django.db import migrations

SEQUENCE = "aftersales_rma_number_seq"


def create_sequence(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} START 100001")


def drop_sequence(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


class Migration(migrations.Migration):
    dependencies = [("aftersales", "0001_initial")]
    operations = [migrations.RunPython(create_sequence, drop_sequence)]
