"""Language choice: Simplified Chinese unless the user picked English (cookie) or an API client asks for it."""

from django.conf import settings
from django.utils import translation


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
