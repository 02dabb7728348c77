"""Project middleware: the input guard's refusal, the language choice (Simplified Chinese unless the user picked English or an API client asks) and the 404 page under DEBUG."""

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import Resolver404, get_resolver
from django.utils import translation

from oms.guard import bad_input_response, request_input_problem
from oms.views import error_404


class DefaultChineseLocaleMiddleware:
    """Pages speak zh-hans by default whatever the browser sends; the language switch sets a cookie.

    The API honours Accept-Language (a client asking for English gets English error messages).
    Stands in for django.middleware.locale.LocaleMiddleware, which would follow the browser.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.supported = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request):
        language = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if language not in self.supported:
            language = settings.LANGUAGE_CODE
            if request.path.startswith("/api/"):
                language = translation.get_language_from_request(request, check_path=False)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        translation.deactivate()
        return response


class ProjectNotFoundPageMiddleware:
    """Under DEBUG, answer a 404 with the project's page instead of Django's technical 404.

    The technical page lists every URL pattern of the project to whoever asks, and the trial runs with
    DEBUG on; anyone it is shown to on a LAN would see the whole map. The project page is used for
    every client (not only remote ones): behind a proxy every request looks local. Without DEBUG
    Django already uses handler404, so this does nothing there.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.DEBUG:
            # An unknown path fails in URL resolution, before any view and so before process_exception.
            try:
                get_resolver(getattr(request, "urlconf", None)).resolve(request.path_info)
            except Resolver404 as exc:
                return error_404(request, exc)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if settings.DEBUG and isinstance(exception, Http404):
            return error_404(request, exception)
        return None


class InputGuardMiddleware:
    """Refuses with a 400 any request carrying control characters in its address, query, cookies, headers,
    form fields or text body, before any view or session lookup can send them to PostgreSQL."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = request_input_problem(request)
        if where is None:
            return self.get_response(request)
        # Answer in the language the page or API client would get (this runs before the locale middleware).
        return DefaultChineseLocaleMiddleware(lambda req: bad_input_response(req, where))(request)
