"""What the REST API accepts, stated once: strict input serializers and the OpenAPI post-processing hook."""

from collections.abc import Mapping

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from oms.api_errors import ERROR_DESCRIPTIONS

# The input guard (oms.guard) refuses these anywhere in a request; the schema says so for every string.
NO_CONTROL_CHARS = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f]*$"


def _wrong_type(field: serializers.Field, value) -> bool:
    """Whether ``value`` has a JSON type other than the one the schema documents for ``field``.

    DRF coerces quietly (1 for "1", "true" for true, 12.5 for "12.50"); the schema promises one type,
    so anything else is refused rather than guessed at.
    """
    if value is None:
        return False  # allow_null decides
    if isinstance(field, serializers.BooleanField):
        return not isinstance(value, bool)
    if isinstance(field, serializers.ChoiceField):
        return not any(type(value) is type(key) and value == key for key in field.choices)
    if isinstance(field, serializers.IntegerField):
        # true is not 1. Numbers and digit strings ("3") go on to DRF, which callers have long relied on
        # and which names the problem itself ("A valid integer is required." for 2.5).
        return isinstance(value, bool) or not isinstance(value, (int, float, str))
    if isinstance(field, (serializers.CharField, serializers.DecimalField, serializers.RelatedField)):
        return not isinstance(value, str)
    if isinstance(field, serializers.ListField):
        return not isinstance(value, list)
    if isinstance(field, serializers.Serializer):
        return not isinstance(value, Mapping)
    return False


class StrictInputSerializer(serializers.Serializer):
    """An API input that refuses unknown fields (a typo must not be ignored) and values of the wrong type."""

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            raise serializers.ValidationError({"non_field_errors": [_("Send a JSON object.")]})
        errors = {key: [_("Unknown field.")] for key in data if key not in self.fields}
        for name, field in self.fields.items():
            if not field.read_only and name in data and _wrong_type(field, data[name]):
                errors[name] = [_("Wrong type of value.")]
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class KnownQueryParamsMixin:
    """For list endpoints: a query parameter the list does not know is refused (400), not ignored.

    A misspelt filter (?stauts=held) would otherwise answer every order as if it had filtered them.
    """

    # Always understood: pagination and DRF's format override (?format=json).
    ALWAYS_KNOWN = frozenset({"page", "format"})

    def list(self, request, *args, **kwargs):
        known = set(self.filterset_class.base_filters) if getattr(self, "filterset_class", None) else set()
        unknown = sorted(set(request.query_params) - known - self.ALWAYS_KNOWN)
        if unknown:
            raise serializers.ValidationError({name: [_("Unknown query parameter.")] for name in unknown})
        return super().list(request, *args, **kwargs)


def _error_ref(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}}


def _tighten_strings(schema: dict) -> None:
    """Give every free string of a request schema the no-control-characters pattern, recursively."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not ({"pattern", "format", "enum"} & set(schema)):
        schema["pattern"] = NO_CONTROL_CHARS
    for key in ("properties",):
        for sub in schema.get(key, {}).values():
            _tighten_strings(sub)
    for key in ("items", "additionalProperties"):
        _tighten_strings(schema.get(key))
    for key in ("oneOf", "anyOf", "allOf"):
        for sub in schema.get(key, []):
            _tighten_strings(sub)


def postprocess_schema(result, generator, request, public):
    """drf-spectacular hook: state what every operation may answer and what every input refuses.

    - Every operation may answer 400 (the input guard), 401, 403, 405 and 429 (throttling), and 404 when
      it addresses an object or a page, all in the ApiError shape.
    - Request bodies take no unknown properties (StrictInputSerializer refuses them) and no control
      characters in strings (the input guard refuses them).
    - An empty optional query parameter means "no filter" (django-filter) or the first page (DRF), so it
      is documented as allowed.
    """

    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            params = operation.get("parameters", [])
            codes = [400, 401, 403, 405, 429]
            if "{" in path or any(p.get("name") == "page" for p in params):
                codes.append(404)
            for code in codes:
                responses.setdefault(str(code), _error_ref(ERROR_DESCRIPTIONS[code]))
            for param in params:
                schema = param.get("schema", {})
                if param.get("in") in {"query", "header"}:
                    _tighten_strings(schema)
                typed = schema.get("type") in {"integer", "number", "boolean"} or (
                    schema.get("type") == "string" and {"format", "enum"} & set(schema))
                if param.get("in") == "query" and not param.get("required") and typed:
                    param["schema"] = {"anyOf": [schema, {"type": "string", "maxLength": 0}]}
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema["additionalProperties"] = False
            _tighten_strings(schema)
    return result
