from django.core.management.base import BaseCommand, CommandError

from reasons import sync
from reasons.models import SyncTrigger


class Command(BaseCommand):
    help = "Pull the cancellation-reason catalog from Omnitron now and print what changed."

    def handle(self, *args, **options):
        try:
            run = sync.pull_reasons(trigger=SyncTrigger.COMMAND)
        except sync.ReasonSyncInProgress as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if not run.succeeded:
            raise CommandError(f"Pull failed ({run.error_cause}): {run.error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Pulled {run.fetched_count} reasons from Omnitron: {run.created_count} created, "
                f"{run.updated_count} updated, {run.deactivated_count} deactivated "
                f"(run {run.pk}, {run.duration.total_seconds():.2f}s)."
            )
        )
        if run.warnings:
            self.stdout.write(self.style.WARNING(run.warnings))
