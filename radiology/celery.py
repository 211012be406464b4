"""The Celery application. Tasks live beside the services they call (`<app>/tasks.py`)."""
import os

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "radiology.settings")

app = Celery("radiology")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_heartbeat = None


@worker_ready.connect
def start_worker_heartbeat(sender=None, **kwargs):
    """A worker, in `serve` or as its own `celery worker` process, tells /healthz it is consuming."""
    global _heartbeat
    from radiology.heartbeat import Heartbeat

    _heartbeat = Heartbeat("worker")
    _heartbeat.start()


@worker_shutdown.connect
def stop_worker_heartbeat(sender=None, **kwargs):
    if _heartbeat is not None:
        _heartbeat.stop()
