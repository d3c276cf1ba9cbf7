from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReasonsConfig(AppConfig):
    name = "reasons"
    verbose_name = _("Cancellation reasons")
