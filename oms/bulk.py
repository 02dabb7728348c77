"""Writing many rows' changed fields in one statement (a batch's status changes, its inbox marks).

Django's bulk_update builds a CASE WHEN per field and row through the ORM's expression machinery,
which costs milliseconds per row in Python; on PostgreSQL one UPDATE … FROM (VALUES …) does the same
with plain parameters. SQLite (the trial) keeps bulk_update.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Model

# Rows per statement: keeps the parameter count far under PostgreSQL's 65,535.
CHUNK = 1000


def rows_update(objs: list[Model], fields: list[str]) -> None:
    """Write ``fields`` of every object (all of one model, all saved) by primary key."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, fields)
        return
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    pk = meta.pk
    casts = [f"%s::{pk.db_type(connection)}"] + [f"%s::{field.db_type(connection)}" for field in columns]
    assignments = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in columns)
    names = ", ".join([quote(pk.column)] + [quote(field.column) for field in columns])
    with connection.cursor() as cursor:
        for start in range(0, len(objs), CHUNK):
            chunk = objs[start:start + CHUNK]
            params = []
            for obj in chunk:
                params.append(obj.pk)
                for field in columns:
                    params.append(field.get_db_prep_save(getattr(obj, field.attname), connection))
            first = "(" + ", ".join(casts) + ")"
            rest = "(" + ", ".join(["%s"] * len(casts)) + ")"
            values = ", ".join([first] + [rest] * (len(chunk) - 1))
            cursor.execute(f"UPDATE {quote(meta.db_table)} AS t SET {assignments} FROM (VALUES {values}) "
                           f"AS v({names}) WHERE t.{quote(pk.column)} = v.{quote(pk.column)}", params)
