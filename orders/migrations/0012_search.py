"""Desk search support: a database-generated last-four-digits column, prefix indexes and pg_trgm name indexes."""

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models


class PostgresOnlyAddIndex(migrations.AddIndex):
    """AddIndex that creates the index on PostgreSQL only; the model state gains it everywhere.

    GIN and gin_trgm_ops exist only there; on the SQLite trial the name search runs without them (slower).
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0011_order_replaces'),
    ]

    operations = [
        # A no-op on other databases (CreateExtension checks the vendor itself).
        TrigramExtension(),
        migrations.AddField(
            model_name='order',
            name='receiver_phone_last4',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.functions.text.Right(django.db.models.functions.text.Trim('receiver_phone'), 4), output_field=models.CharField(max_length=4), verbose_name='last four digits of the receiver phone'),
        ),
        migrations.AddIndex(
            model_name='order',
            index=models.Index(fields=['receiver_phone_last4', '-placed_at'], name='order_phone_last4_idx'),
        ),
        migrations.AddIndex(
            model_name='order',
            index=models.Index(fields=['store', 'buyer_id'], name='order_store_buyer_idx'),
        ),
        migrations.AddIndex(
            model_name='order',
            index=models.Index(fields=['receiver_name'], name='order_receiver_name_prefix', opclasses=['text_pattern_ops']),
        ),
        migrations.AddIndex(
            model_name='order',
            index=models.Index(fields=['buyer_name'], name='order_buyer_name_prefix', opclasses=['text_pattern_ops']),
        ),
        PostgresOnlyAddIndex(
            model_name='order',
            index=django.contrib.postgres.indexes.GinIndex(fields=['receiver_name'], name='order_receiver_name_trgm', opclasses=['gin_trgm_ops']),
        ),
        PostgresOnlyAddIndex(
            model_name='order',
            index=django.contrib.postgres.indexes.GinIndex(fields=['buyer_name'], name='order_buyer_name_trgm', opclasses=['gin_trgm_ops']),
        ),
    ]
