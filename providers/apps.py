from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = _("Providers and deliveries")

    def ready(self):
        # The one place that names the adapters and the delivery tasks: the outbox seam (which
        # the cancellation core calls) finds them through the registry, importing neither.
        from backoffice.metrics import add_scrape_collector

        from . import metrics, outbox, registry, tasks
        from .billing import BillingAdapter
        from .callisto import CallistoAdapter
        from .js7 import Js7Adapter
        from .rebilly import RebillyAdapter

        registry.register(CallistoAdapter, RebillyAdapter, Js7Adapter, BillingAdapter)
        outbox.connect_tasks(deliver_one=tasks.deliver_one, deliver_due=tasks.deliver_due)
        add_scrape_collector(metrics.OutboxCollector())
