"""The two OpenAPI schemas' path filters: the staff schema without the customer API, the customer one alone."""

CUSTOMER_PREFIX = "/api/customer/"


def staff_endpoints_only(endpoints, **kwargs):
    """drf-spectacular preprocessing hook of /api/schema/: the buyers' API is documented apart."""
    return [endpoint for endpoint in endpoints if not endpoint[0].startswith(CUSTOMER_PREFIX)]


def customer_endpoints_only(endpoints, **kwargs):
    """Preprocessing hook of /api/customer/v1/schema/: only the buyers' API, nothing of the staff's."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith(CUSTOMER_PREFIX)]
