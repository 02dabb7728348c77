"""Payment snapshots cannot change: the model refuses a second save, PostgreSQL refuses UPDATE and DELETE."""

import pgtrigger
import pytest
from django.db import DatabaseError, connection, transaction

from finance.models import PaymentSnapshot


@pytest.fixture
def snapshot(make_order) -> PaymentSnapshot:
    return make_order(paid=True).payment_snapshots.get()


def raw(sql: str, params) -> None:
    with transaction.atomic(), connection.cursor() as cursor:  # a savepoint: the test's transaction stays usable
        cursor.execute(sql, params)


def test_a_raw_update_fails_on_postgresql(snapshot):
    with pytest.raises(DatabaseError, match="Cannot update or delete"):
        raw("UPDATE finance_paymentsnapshot SET paid_amount = 0 WHERE id = %s", [snapshot.pk])

    snapshot.refresh_from_db()
    assert snapshot.paid_amount == snapshot.order.paid_amount != 0


def test_a_raw_delete_fails_on_postgresql(snapshot):
    with pytest.raises(DatabaseError, match="Cannot update or delete"):
        raw("DELETE FROM finance_paymentsnapshot WHERE id = %s", [snapshot.pk])

    assert PaymentSnapshot.objects.filter(pk=snapshot.pk).exists()


def test_queryset_writes_fail_too(snapshot):
    with pytest.raises(DatabaseError), transaction.atomic():
        PaymentSnapshot.objects.filter(pk=snapshot.pk).update(payment_id="2026110322001")
    with pytest.raises(DatabaseError), transaction.atomic():
        PaymentSnapshot.objects.filter(pk=snapshot.pk).delete()

    snapshot.refresh_from_db()
    assert snapshot.payment_id == ""


def test_the_model_refuses_a_second_save(snapshot):
    with pytest.raises(ValueError, match="immutable"):
        snapshot.save()


def test_a_deliberate_repair_names_the_trigger_it_ignores(snapshot):
    with pgtrigger.ignore("finance.PaymentSnapshot:snapshot_immutable"):
        raw("UPDATE finance_paymentsnapshot SET reference = %s WHERE id = %s", ["repaired", snapshot.pk])

    snapshot.refresh_from_db()
    assert snapshot.reference == "repaired"
