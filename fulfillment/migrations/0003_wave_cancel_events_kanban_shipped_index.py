# Waves can be cancelled and their parcels dropped (with events for each), and the kanban's shipped lane has an
# index of its own. Written by hand to hold only these changes.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('fulfillment', '0002_shipment_waybill_voided_at'),
    ]

    operations = [
        migrations.AlterField(
            model_name='shipmentevent',
            name='type',
            field=models.CharField(choices=[('created', 'Created'), ('status_changed', 'Status changed'), ('routed', 'Routed'), ('routing_overridden', 'Routing overridden'), ('merged', 'Merged'), ('unmerged', 'Unmerged'), ('split', 'Split'), ('scan_refused', 'Scan refused'), ('waybill', 'Waybill'), ('tracking', 'Tracking update'), ('tracking_stale', 'No tracking update'), ('weight_mismatch', 'Weight mismatch'), ('wave_removed', 'Removed from the wave'), ('wave_cancelled', 'Wave cancelled'), ('wave_skipped', 'Not picked with the wave')], max_length=32, verbose_name='type'),
        ),
        migrations.AlterField(
            model_name='wave',
            name='status',
            field=models.CharField(choices=[('open', 'Open'), ('picking', 'Picking'), ('done', 'Done'), ('cancelled', 'Cancelled')], default='open', max_length=10, verbose_name='status'),
        ),
        migrations.AddIndex(
            model_name='shipment',
            index=models.Index(condition=models.Q(('status', 'shipped')), fields=['warehouse', 'shipped_at', 'id'], name='shipment_kanban_shipped_idx'),
        ),
    ]
