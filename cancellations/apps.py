from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CancellationsConfig(AppConfig):
    name = "cancellations"
    verbose_name = _("Cancellations")

    def ready(self):
        from reasons.services import catalog_changed

        from .audit import record_catalog_change

        # The reason catalog sits below this app: it announces its edits, the trail records them.
        catalog_changed.connect(record_catalog_change, dispatch_uid="cancellations.audit.catalog")
