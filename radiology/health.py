"""The checks behind /healthz: the database, the archive storage and each long-running component."""
import os
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from radiology.models import ServiceHeartbeat

# Components that must be running for the platform to be ready.
REQUIRED_COMPONENTS = ["worker", "dicom", "hl7"]


def check_database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "down", reported with its reason
        return {"status": "down", "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    return {"status": "ok", "engine": connection.vendor}


def check_storage():
    path = Path(settings.STORAGE_LOCATION)
    try:
        path.mkdir(parents=True, exist_ok=True)
        writable = os.access(path, os.W_OK)
        usage = os.statvfs(path)
    except OSError as exc:
        return {"status": "down", "location": str(path), "error": exc.strerror}
    free_bytes = usage.f_bavail * usage.f_frsize
    return {"status": "ok" if writable else "down", "location": str(path), "free_bytes": free_bytes,
            **({} if writable else {"error": "not writable"})}


def check_component(name, now):
    fresh_after = now - timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)
    beats = list(ServiceHeartbeat.objects.filter(component=name).order_by("-last_seen"))
    alive = [beat for beat in beats if beat.last_seen >= fresh_after]
    state = {"status": "ok" if alive else "down", "processes": len(alive)}
    if beats:
        state["last_seen"] = beats[0].last_seen.isoformat()
    return state


def platform_health():
    """A dict of component states and whether all of them are ok."""
    components = {"database": check_database(), "storage": check_storage()}
    if components["database"]["status"] == "ok":
        now = timezone.now()
        for name in REQUIRED_COMPONENTS:
            components[name] = check_component(name, now)
    else:
        for name in REQUIRED_COMPONENTS:
            components[name] = {"status": "unknown", "error": "database unavailable"}
    healthy = all(state["status"] == "ok" for state in components.values())
    return {"status": "ok" if healthy else "degraded", "components": components}
