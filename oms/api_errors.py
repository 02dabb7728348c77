"""Turns every API error into JSON with a stable code and a readable message."""

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from oms.exceptions import DomainError

logger = logging.getLogger(__name__)

_CODES = {
    exceptions.ParseError: "parse_error",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def error_body(code: str, message: str, errors=None, **extra) -> dict:
    body = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def field_errors_flat(errors, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested field errors under flat keys ("lines[0].quantity"), the shape the services use, so a caller
    reads one shape whether the serializer or the service refused the input."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = f"{prefix}[{key}]" if isinstance(key, int) else (f"{prefix}.{key}" if prefix else str(key))
            for sub, messages in field_errors_flat(value, name).items():
                flat.setdefault(sub, []).extend(messages)
    elif isinstance(errors, list) and any(isinstance(item, (dict, list)) for item in errors):
        for index, value in enumerate(errors):
            for sub, messages in field_errors_flat(value, f"{prefix}[{index}]").items():
                flat.setdefault(sub, []).extend(messages)
    else:
        items = errors if isinstance(errors, list) else [errors]
        flat[prefix or "non_field_errors"] = [str(item) for item in items]
    return flat


def api_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.data or None), status=exc.http_status)
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(error_body("invalid", "Invalid input.", errors), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid", "Invalid input.", response.data)
    else:
        detail = response.data.get("detail") if isinstance(response.data, dict) else response.data
        # A code given where the exception was raised (401 token_expired) is more precise than the type's.
        given = getattr(detail, "code", None)
        default = getattr(exc, "default_code", "error")
        code = given if isinstance(given, str) and given != default else (_CODES.get(type(exc)) or default)
        response.data = error_body(code, str(detail))
    return response


# --- The error shape in the OpenAPI schema ----------------------------------------------------------


class ApiErrorSerializer(serializers.Serializer):
    """Every 4xx answer of the API: a stable code, a sentence, and per-field details when there are some."""

    code = serializers.CharField(help_text="Stable machine-readable code, e.g. invalid, not_found, "
                                           "transition_not_allowed, amount_out_of_range.")
    message = serializers.CharField(help_text="A readable sentence in the caller's language.")
    errors = serializers.JSONField(required=False, help_text="Details: per-field messages for code invalid, "
                                                             "or facts about the refusal (say the current status).")


ERROR_DESCRIPTIONS = {
    400: "Bad input: invalid (with per-field errors), parse_error, or a business rule such as "
         "amount_out_of_range, order_invalid, unknown_transition, idempotency_key_too_long.",
    401: "No credentials or wrong ones: not_authenticated, authentication_failed (customer API also token_expired, "
         "wechat_unbound).",
    403: "The credentials may not do this: permission_denied.",
    404: "No such object: not_found (or a more precise code such as order_not_found).",
    405: "This path does not take this method: method_not_allowed.",
    409: "The object's current state does not allow it: transition_not_allowed, hold_conflict, paid_by_platform, "
         "duplicate_order...",
    415: "The body is not JSON: unsupported_media_type.",
    422: "The same Idempotency-Key came with a different request: idempotency_key_reused.",
    429: "Too many requests: throttled (retry after the Retry-After header).",
    503: "A service the call depends on is unavailable or not set up: try again later (e.g. wechat_unavailable).",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the error answers an operation gives, all in the shared error shape."""
    return {code: OpenApiResponse(ApiErrorSerializer, description=ERROR_DESCRIPTIONS[code]) for code in statuses}


# What every authenticated API operation may answer besides its own errors.
COMMON_ERRORS = (401, 403, 405, 429)
