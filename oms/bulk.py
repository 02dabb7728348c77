"""Writing many rows' changed fields in one statement (a batch's status changes, its inbox marks).

Django's bulk_update builds a CASE WHEN per field and row through the ORM's expression machinery,
which costs milliseconds per row in Python; on PostgreSQL one UPDATE … FROM (VALUES …) does the same
with plain parameters. SQLite (the trial) keeps bulk_update.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import F, Model

# Rows per statement: keeps the parameter count far under PostgreSQL's 65,535.
CHUNK = 1000


def rows_update(objs: list[Model], fields: list[str], *, add_one: tuple[str, ...] = ()) -> None:
    """Write ``fields`` of every object (all of one model, all saved) by primary key; the columns named in
    ``add_one`` go up by one in the database (a counter), whatever the objects hold."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        for obj in objs:
            for name in add_one:
                setattr(obj, name, F(name) + 1)
        model.objects.bulk_update(objs, [*fields, *add_one], batch_size=100)
        return
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    pk = meta.pk
    casts = [f"%s::{pk.db_type(connection)}"] + [f"%s::{field.db_type(connection)}" for field in columns]
    assignments = ", ".join([f"{quote(field.column)} = v.{quote(field.column)}" for field in columns]
                            + [f"{quote(meta.get_field(name).column)} = t.{quote(meta.get_field(name).column)} + 1"
                               for name in add_one])
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


# Field classes whose value PostgreSQL's driver takes as it is (their get_db_prep_save only checks and returns
# it); any other field (JSON, IP address…) is prepared by Django. A str subclass such as a lazy translation
# is not such a value: the batch writers pass plain strings.
_AS_IS = (models.CharField, models.TextField, models.IntegerField, models.BooleanField, models.DecimalField,
          models.DateTimeField, models.ForeignKey)


def _preparers(model) -> list:
    """Per concrete column of ``model`` (id and computed columns left out): (field, None when the value
    goes as it is, else the field's own preparation)."""
    fields = [field for field in model._meta.concrete_fields if not field.primary_key and not field.generated]
    return [(field, None if isinstance(field, _AS_IS) else field.get_db_prep_save) for field in fields]


def rows_insert(objs: list[Model]) -> list[Model]:
    """Insert new objects of one model in as few statements as the parameter limit allows and set their ids.

    The batch path writes tens of rows per order; bulk_create spends most of its time in the ORM's
    per-value preparation. On PostgreSQL this prepares only the values that need it, sends one multi-row
    INSERT … RETURNING id per chunk and fills in the ids (a related object saved earlier in the batch gives
    its id to the foreign key, as bulk_create does). SQLite (the trial) keeps bulk_create.
    """
    if not objs:
        return objs
    model = type(objs[0])
    if connection.vendor != "postgresql":
        return model.objects.bulk_create(objs)
    db = connections[DEFAULT_DB_ALIAS]
    meta = model._meta
    preparers = _preparers(model)
    fields = [field for field, _prepare in preparers]
    attnames = [(field.attname, prepare) for field, prepare in preparers]
    stamped = [field for field in fields if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)]
    relations = [field for field in fields if field.is_relation]
    quote = db.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    per_statement = max(1, min(CHUNK, 60_000 // len(fields)))
    with db.cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            chunk = objs[start:start + per_statement]
            params = []
            for obj in chunk:
                for field in stamped:
                    field.pre_save(obj, True)
                for field in relations:
                    if getattr(obj, field.attname) is None:
                        related = field.get_cached_value(obj, None)
                        if related is not None and related.pk is not None:
                            setattr(obj, field.attname, related.pk)
                values = obj.__dict__
                for attname, prepare in attnames:
                    value = values.get(attname)
                    params.append(value if prepare is None else prepare(value, db))
            cursor.execute(f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([row] * len(chunk))} "
                           f"RETURNING {quote(meta.pk.column)}", params)
            for obj, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                obj.pk = pk
                obj._state.adding = False
                obj._state.db = db.alias
    return objs
