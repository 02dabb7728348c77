"""The store's platform-only settings (credentials, stock push switch and formula) move to its ChannelSyncState."""

from decimal import Decimal

from django.db import migrations, models

MOVED = ("credentials", "stock_push_enabled", "stock_share", "stock_buffer")


def copy_from_stores(apps, schema_editor):
    Store = apps.get_model("orders", "Store")
    ChannelSyncState = apps.get_model("connectors", "ChannelSyncState")
    for store in Store.objects.all():
        state, _created = ChannelSyncState.objects.get_or_create(store=store)
        for name in MOVED:
            setattr(state, name, getattr(store, name))
        state.save(update_fields=list(MOVED))


def copy_back(apps, schema_editor):
    Store = apps.get_model("orders", "Store")
    ChannelSyncState = apps.get_model("connectors", "ChannelSyncState")
    for state in ChannelSyncState.objects.all():
        Store.objects.filter(pk=state.store_id).update(**{name: getattr(state, name) for name in MOVED})


class Migration(migrations.Migration):

    dependencies = [
        ("connectors", "0008_shopify_settings_and_payment_capture"),
        ("orders", "0008_verbose_names_in_chinese"),
    ]

    operations = [
        migrations.AddField(model_name="channelsyncstate", name="credentials",
                            field=models.JSONField(blank=True, default=dict, verbose_name="credentials")),
        migrations.AddField(model_name="channelsyncstate", name="stock_push_enabled",
                            field=models.BooleanField(default=True, verbose_name="push stock to the platform")),
        migrations.AddField(model_name="channelsyncstate", name="stock_share",
                            field=models.DecimalField(decimal_places=4, default=Decimal("1"), max_digits=5,
                                                      verbose_name="share of available stock")),
        migrations.AddField(model_name="channelsyncstate", name="stock_buffer",
                            field=models.PositiveIntegerField(default=0, verbose_name="stock buffer")),
        migrations.RunPython(copy_from_stores, copy_back),
    ]
