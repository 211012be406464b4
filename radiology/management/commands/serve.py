import sys

from django.core.management.base import BaseCommand

from radiology.server import components_to_serve, run_components


class Command(BaseCommand):
    help = ("Run the platform in one process: web (HTTP + WebSocket), the DICOM listener, the HL7 v2 (MLLP) "
            "listener and the background task worker with its periodic tasks.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-worker", action="store_true",
            help="Do not run a task worker here (when `celery -A radiology worker` processes run instead).")

    def handle(self, *args, **options):
        sys.exit(run_components(components_to_serve(with_worker=not options["no_worker"])))
