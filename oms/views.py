"""Project-wide views: the home redirect, the health endpoint and error pages (JSON under /api/)."""

import logging

from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from oms.api_errors import error_body
from oms.selectors import health_report

logger = logging.getLogger(__name__)


def home(request: HttpRequest):
    return redirect("orders:list")


def healthz(request: HttpRequest):
    """Health of the web process, the database, the broker and the workers (200 only when all are fine)."""
    report = health_report()
    status_code = 200 if report["status"] == "ok" else 503
    return JsonResponse(report, status=status_code)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def error_400(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_body("bad_request", "Bad request."), status=400)
    return render(request, "errors/error.html", {"status": 400, "message": _("Bad request.")}, status=400)


def error_403(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_body("permission_denied", "You do not have permission to perform this action."), status=403)
    return render(request, "errors/error.html", {"status": 403, "message": _("You do not have permission to see this page.")}, status=403)


def error_404(request, exception=None):
    if _is_api(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return render(request, "errors/error.html", {"status": 404, "message": _("Page not found.")}, status=404)


def error_500(request):
    if _is_api(request):
        return JsonResponse(error_body("server_error", "Internal error; it has been logged."), status=500)
    return render(request, "errors/error.html", {"status": 500, "message": _("Internal error; it has been logged.")}, status=500)
