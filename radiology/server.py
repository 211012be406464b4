"""The long-running components that `manage.py serve` runs together in one process.

Each component has start() (returns once it is serving, or raises StartupError), stop() and is_alive().
Apps add theirs (the archive's DICOM listener, the worklist's HL7 listener) to `components_to_serve`.
"""
import logging
import signal
import socket
import threading
import time

from django.conf import settings

from radiology import events

logger = logging.getLogger(__name__)


class StartupError(Exception):
    """A component could not start; the message says why in one line."""


class WebServer:
    """Uvicorn serving the ASGI application (HTTP and WebSocket) in a thread of its own."""

    name = "web"

    def __init__(self, host, port):
        import uvicorn

        from radiology.asgi import application

        self.address = f"{host}:{port}"
        config = uvicorn.Config(
            application, host=host, port=port, lifespan="off", log_config=None, access_log=False,
            ws="websockets-sansio", proxy_headers=True, timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)

    def start(self):
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise StartupError(f"web server could not listen on {self.address} (see the log above)")
            time.sleep(0.05)
        # Live events from the DICOM, HL7 and worker threads are sent on this loop (radiology/events.py).
        events.use_web_loop(self._server.servers[0].get_loop())
        logger.info("web server on http://%s/", self.address)

    def stop(self):
        events.use_web_loop(None)
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def is_alive(self):
        return self._thread.is_alive()


class TaskWorker:
    """A Celery worker consuming the task queue in threads of this process."""

    name = "worker"

    def __init__(self, concurrency=2):
        from celery.signals import worker_ready

        from radiology.celery import app

        # Celery's own `worker` command sends worker_ready; the bare WorkController leaves it to its caller.
        self._worker = app.WorkController(
            hostname=f"serve@{socket.gethostname()}", pool_cls="threads", concurrency=concurrency,
            without_heartbeat=True, without_mingle=True, without_gossip=True,
            ready_callback=lambda consumer: worker_ready.send(sender=consumer))
        self._thread = threading.Thread(target=self._worker.start, name="worker", daemon=True)
        # The periodic tasks (radiology/celery.py: critical-result escalation, outbound HL7 retries) in a beat
        # thread: the worker's own `beat` option would fork a process, which a process full of threads must not.
        from celery.beat import EmbeddedService

        self._beat = EmbeddedService(app, thread=True)

    def start(self):
        self._thread.start()
        self._beat.start()
        logger.info("task worker on %s", settings.CELERY_BROKER_URL.split("@")[-1])

    def stop(self):
        self._beat.stop()
        self._worker.stop(in_sighandler=False)
        self._thread.join(timeout=15)

    def is_alive(self):
        # Without its beat thread, escalations and HL7 retries would stop unnoticed.
        return self._thread.is_alive() and self._beat.is_alive()


def components_to_serve(with_worker=True):
    # Imported here: the listeners belong to the archive and worklist apps, which build on this module
    # (StartupError).
    from archive.dimse.listener import DicomListenerGroup
    from worklist.hl7.mllp import HL7Listener

    components = [WebServer(settings.HTTP_HOST, settings.HTTP_PORT), DicomListenerGroup(settings.DICOM_PROCESSES),
                  HL7Listener()]
    if with_worker:
        components.append(TaskWorker())
    return components


def run_components(components):
    """Start the components in order, run until SIGTERM/SIGINT or until one of them dies, stop them in reverse
    order. Returns the process exit status: 0 after a requested stop, 1 after a failure."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    started = []
    exit_code = 0
    try:
        for component in components:
            component.start()
            started.append(component)
        logger.info("ready; stop with Ctrl-C or SIGTERM")
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
    return exit_code
