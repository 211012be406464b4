import logging
import signal
import sys
import threading

from django.core.management.base import BaseCommand

from radiology.server import StartupError, components_to_serve

logger = logging.getLogger("radiology.serve")


class Command(BaseCommand):
    help = "Run the platform in one process: web (HTTP + WebSocket) and the background task worker."

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-worker", action="store_true",
            help="Do not run a task worker here (when `celery -A radiology worker` processes run instead).")

    def handle(self, *args, **options):
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())

        started = []
        exit_code = 0
        try:
            for component in components_to_serve(with_worker=not options["no_worker"]):
                component.start()
                started.append(component)
            logger.info("platform ready; stop with Ctrl-C or SIGTERM")
            while not stopping.wait(0.5):
                dead = [component.name for component in started if not component.is_alive()]
                if dead:
                    logger.error("component stopped unexpectedly: %s; shutting down", ", ".join(dead))
                    exit_code = 1
                    break
        except StartupError as exc:
            logger.error("%s", exc)
            exit_code = 1
        finally:
            for component in reversed(started):
                component.stop()
            logger.info("stopped")
        sys.exit(exit_code)
