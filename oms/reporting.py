"""What the debug page and error reports may show: settings and request data without addresses or secrets."""

import re

from django.views.debug import SafeExceptionReporterFilter

# A URL with a user or password in it (postgres://user:pw@host, redis://:pw@host), whatever its name.
_URL_WITH_CREDENTIALS = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]*@", re.I)


class OmsExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, also hiding every *_URL setting or environment variable (DATABASE_URL, REDIS_URL,
    CELERY_BROKER_URL: runserver copies the environment into request.META), cache LOCATIONs, and any value
    that is a URL carrying credentials."""

    hidden_settings = re.compile(r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|_URL$|^LOCATION$", re.I)

    def cleanse_setting(self, key, value):
        # type(), not isinstance(): lazy objects pass isinstance(str) but are no strings to a regex.
        if type(value) is str and _URL_WITH_CREDENTIALS.search(value):
            return self.cleansed_substitute
        return super().cleanse_setting(key, value)
