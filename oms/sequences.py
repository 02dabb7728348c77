"""Document numbers from a database sequence (PostgreSQL) or a locked counter row (SQLite fallback)."""

from django.db import connection, transaction
from django.db.models import F

from oms.models import NumberSequence

# Sequences that exist on PostgreSQL; the migration that creates them lists the same names.
POSTGRES_SEQUENCES = {
    "order_number": "oms_order_number_seq",
    "shipment_number": "oms_shipment_number_seq",
    "wave_number": "oms_wave_number_seq",
    "rma_number": "aftersales_rma_number_seq",  # created by aftersales' migration 0002
}
SEQUENCE_START = 100001


def next_sequence_value(name: str) -> int:
    """Next value of a named sequence; gap-free is not promised, unique is."""
    if connection.vendor == "postgresql" and name in POSTGRES_SEQUENCES:
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(%s)", [POSTGRES_SEQUENCES[name]])
            return int(cursor.fetchone()[0])
    # SQLite serialises writers (IMMEDIATE transactions), so increment-then-read in one
    # transaction is unique; the row is created on first use.
    with transaction.atomic():
        # Start where the PostgreSQL sequence starts, so numbers look the same on both databases.
        NumberSequence.objects.get_or_create(name=name, defaults={"last_value": SEQUENCE_START - 1})
        NumberSequence.objects.filter(name=name).update(last_value=F("last_value") + 1)
        return NumberSequence.objects.values_list("last_value", flat=True).get(name=name)


def next_sequence_values(name: str, count: int) -> list[int]:
    """``count`` values of a named sequence in one round trip (a batch of new orders or parcels)."""
    if count <= 0:
        return []
    if connection.vendor == "postgresql" and name in POSTGRES_SEQUENCES:
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [POSTGRES_SEQUENCES[name], count])
            return sorted(int(row[0]) for row in cursor.fetchall())
    with transaction.atomic():
        NumberSequence.objects.get_or_create(name=name, defaults={"last_value": SEQUENCE_START - 1})
        NumberSequence.objects.filter(name=name).update(last_value=F("last_value") + count)
        last = NumberSequence.objects.values_list("last_value", flat=True).get(name=name)
    return list(range(last - count + 1, last + 1))
