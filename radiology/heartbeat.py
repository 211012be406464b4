"""Liveness of long-running components (task worker, DICOM and HL7 listeners) as rows in the database.

A row per process, refreshed every HEARTBEAT_SECONDS, lets /healthz report the components of every process
and machine alike, whether `serve` runs them all or they run as separate processes.
"""
import logging
import os
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

logger = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, component, detail=""):
        self.component = component
        self.detail = detail
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{component}", daemon=True)

    def start(self):
        # Done here, in the caller's thread, rather than in the beating thread: an in-memory SQLite database
        # (the test suite's) refuses a second writer at once instead of waiting for the first.
        from radiology.models import ServiceHeartbeat

        ServiceHeartbeat.objects.filter(
            component=self.component, hostname=self.hostname, last_seen__lt=timezone.now() - timedelta(days=1)
        ).delete()
        self.beat()
        self._thread.start()

    def stop(self):
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=settings.HEARTBEAT_SECONDS + 5)
        # A cleanly stopped component is not running: say so at once rather than after the stale delay.
        from radiology.models import ServiceHeartbeat

        try:
            ServiceHeartbeat.objects.filter(component=self.component, hostname=self.hostname, pid=self.pid).delete()
        except Exception:  # noqa: BLE001 - the database may be gone during shutdown; the row then goes stale
            logger.warning("could not remove the %s heartbeat", self.component, exc_info=True)
        finally:
            connection.close()

    def beat(self):
        from radiology.models import ServiceHeartbeat

        now = timezone.now()
        ServiceHeartbeat.objects.update_or_create(
            component=self.component, hostname=self.hostname, pid=self.pid,
            defaults={"last_seen": now, "detail": self.detail},
        )

    def _run(self):
        while not self._stopped.wait(settings.HEARTBEAT_SECONDS):
            close_old_connections()
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - keep beating once the database is back
                logger.warning("heartbeat of %s failed", self.component, exc_info=True)
        connection.close()
