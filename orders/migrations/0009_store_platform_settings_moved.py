"""Store keeps no platform-only settings: they live on connectors' ChannelSyncState (copied there first)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0008_verbose_names_in_chinese"),
        ("connectors", "0009_store_platform_settings"),
    ]

    operations = [
        migrations.RemoveField(model_name="store", name="credentials"),
        migrations.RemoveField(model_name="store", name="stock_push_enabled"),
        migrations.RemoveField(model_name="store", name="stock_share"),
        migrations.RemoveField(model_name="store", name="stock_buffer"),
    ]
