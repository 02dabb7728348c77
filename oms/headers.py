"""Response headers for security: the Content-Security-Policy, the Permissions-Policy and no-store for personal data."""

from csp.constants import UNSAFE_INLINE
from csp.middleware import CSPMiddleware, PolicyParts
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import add_never_cache_headers

# The browser features no page of ours uses. Scanning at the packing station is a USB keyboard-wedge
# scanner (keystrokes), not the camera, so the camera is off too; an embedded frame gets nothing either.
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "camera", "geolocation", "gyroscope", "magnetometer", "microphone", "payment", "usb",
))

# The API documentation pages (drf-spectacular's Swagger UI and ReDoc) ship an inline <script> and
# <style>, and ReDoc starts a web worker from a blob. They show the API's shape, never data, so
# they alone get those sources; every other page runs with script-src and style-src 'self'.
API_DOCS_PREFIXES = ("/api/docs/", "/api/redoc/")
API_DOCS_POLICY_UPDATE = {"script-src": [UNSAFE_INLINE], "style-src": [UNSAFE_INLINE], "worker-src": ["blob:"]}


class ProjectCSPMiddleware(CSPMiddleware):
    """django-csp's middleware with the API documentation exception above (its documented extension point)."""

    def get_policy_parts(self, request: HttpRequest, response: HttpResponseBase,
                         report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request=request, response=response, report_only=report_only)
        if not report_only and parts.update is None and request.path_info.startswith(API_DOCS_PREFIXES):
            parts.update = API_DOCS_POLICY_UPDATE
        return parts


class PrivacyHeadersMiddleware:
    """Permissions-Policy on every response; no-store on every response that can hold personal data.

    The rule is deliberately simple: whatever answers a signed-in user, and every /api/ response
    (token clients are authenticated inside DRF, after this middleware looks at request.user), must
    not be kept by the browser or a proxy, so the back button after logging out shows nothing.
    Static files never get here (WhiteNoise answers them further out).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        if request.path_info.startswith("/api/") or (user is not None and user.is_authenticated):
            add_never_cache_headers(response)
        return response
