"""The channel stock push's work list (ChannelStockDirty), seeded from the pushes still pending."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import F
from django.utils import timezone


def seed_from_pending_pushes(apps, schema_editor):
    """Pushes still pending in ChannelStock (changed, not yet pushed) carry over, so the switch loses none."""
    ChannelStock = apps.get_model("connectors", "ChannelStock")
    ChannelStockDirty = apps.get_model("inventory", "ChannelStockDirty")
    pending = ChannelStock.objects.filter(change_seq__gt=F("pushed_seq")).values_list("store_id", "sku_id",
                                                                                      "changed_at")
    ChannelStockDirty.objects.bulk_create(
        [ChannelStockDirty(store_id=store_id, sku_id=sku_id, version=1, marked_at=changed_at or timezone.now())
         for store_id, sku_id, changed_at in pending.iterator()], batch_size=1000, ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [
        ('inventory', '0004_staff_scope'),
        ('orders', '0008_verbose_names_in_chinese'),
        # Read once to carry pending pushes over; connectors' tables point at inventory, never the reverse.
        ('connectors', '0008_shopify_settings_and_payment_capture'),
    ]

    operations = [
        migrations.CreateModel(
            name='ChannelStockDirty',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('version', models.BigIntegerField(default=1, verbose_name='version')),
                ('marked_at', models.DateTimeField(verbose_name='marked at')),
                ('sku', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+',
                                          to='inventory.sku', verbose_name='SKU')),
                ('store', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+',
                                            to='orders.store', verbose_name='store')),
            ],
            options={
                'verbose_name': 'channel stock to push',
                'verbose_name_plural': 'channel stock to push',
                'indexes': [models.Index(fields=['marked_at'], name='channel_stock_dirty_marked')],
                'constraints': [models.UniqueConstraint(fields=('store', 'sku'), name='channel_stock_dirty_unique')],
            },
        ),
        migrations.RunPython(seed_from_pending_pushes, migrations.RunPython.noop),
    ]
