"""App config of customer: the mini-program API for buyers, WeChat login and the public tracking page."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomerConfig(AppConfig):
    name = "customer"
    verbose_name = _("Customer API")
