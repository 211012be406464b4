"""Sending channel-layer events (live pages) from synchronous code: services, DIMSE and HL7 handlers, tasks.

`async_to_sync(layer.group_send)` called from a thread without an event loop starts a loop and a thread for
every event (about 1.5 ms of CPU and 3 ms of wall time here), on the path of the C-STORE, HL7 message or
request that caused it. Events go instead to one long-lived loop, without waiting:
- the in-memory layer (the embedded default) keeps its groups in asyncio queues of the loop that serves the
  WebSocket consumers, so its events must be sent on that very loop; `serve` registers the web server's loop
  (radiology/server.py), which also makes events from the DICOM and HL7 threads reach the pages at once;
- a Redis layer is sent to from a loop of its own in a background thread, keeping its connections open.
With the in-memory layer and no registered loop (tests, management commands) the event is sent in the
caller's thread as before.
"""
import asyncio
import logging
import threading

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

_web_loop = None
_background_loop = None
_background_lock = threading.Lock()


def use_web_loop(loop):
    """Called by `serve` once its web server runs; None when it stops."""
    global _web_loop
    _web_loop = loop


def publish_after_commit(group, event):
    """Send `event` to `group` once the current transaction commits, so no page hears of a rolled-back change."""
    transaction.on_commit(lambda: publish(group, event))


def publish(group, event):
    layer = get_channel_layer()
    if layer is None:
        return
    loop = _web_loop if isinstance(layer, InMemoryChannelLayer) else _background()
    if loop is None:
        async_to_sync(layer.group_send)(group, event)
        return
    try:
        future = asyncio.run_coroutine_threadsafe(layer.group_send(group, event), loop)
    except RuntimeError:  # the loop has closed: the server is stopping, no page is left to tell
        return
    future.add_done_callback(_log_failure)


def _background():
    global _background_loop
    with _background_lock:
        if _background_loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-events", daemon=True).start()
            _background_loop = loop
    return _background_loop


def _log_failure(future):
    if not future.cancelled() and future.exception() is not None:
        logger.warning("live event not sent: %s", future.exception())
