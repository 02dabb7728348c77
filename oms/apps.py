"""App config of the project package (it holds shared models such as sequences and heartbeats)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OmsConfig(AppConfig):
    name = "oms"
    verbose_name = _("Order hub")
