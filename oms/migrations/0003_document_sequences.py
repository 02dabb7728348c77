"""Create the PostgreSQL sequences that number shipments and waves (SQLite uses NumberSequence rows)."""

from django.db import migrations

SEQUENCES = ["oms_shipment_number_seq", "oms_wave_number_seq"]


def create_sequences(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in SEQUENCES:
            schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {name} START 100001")


def drop_sequences(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in SEQUENCES:
            schema_editor.execute(f"DROP SEQUENCE IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("oms", "0002_order_number_sequence")]
    operations = [migrations.RunPython(create_sequences, drop_sequences)]
