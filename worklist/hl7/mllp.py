"""The HL7 v2 listener: MLLP over TCP (HL7 v2.5.1 appendix C), python-hl7's asyncio server, run by
`manage.py serve` as its "hl7" component on RADIOLOGY_HL7_HOST:RADIOLOGY_HL7_PORT.

The event loop runs in a thread of its own and only moves bytes; each message is processed (database work, in
one transaction) on a small pool of worker threads, one message at a time per connection: a sender waits for
the ACK of each message before it sends the next (original-mode acknowledgement), so messages of one
connection are applied in the order sent.
"""
import asyncio
import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from hl7.mllp import start_hl7_server
from hl7.mllp.exceptions import InvalidBlockError

from radiology.heartbeat import Heartbeat
from radiology.server import StartupError
from worklist.hl7 import inbound

logger = logging.getLogger(__name__)

# Worker threads for message processing: several connections are served at once, each with its own database
# connection; SQLite serialises their commits anyway.
WORKERS = 4
# Largest message accepted (bytes between the MLLP start and end characters); a longer block is refused and the
# connection closed, since its end can no longer be found reliably.
MAXIMUM_MESSAGE_BYTES = 4 * 1024 * 1024
STARTUP_SECONDS = 15


class HL7Listener:
    """start() returns once the port is listening, or raises StartupError; stop() closes the port, lets the
    messages being processed finish, and closes the connections."""

    name = "hl7"

    def __init__(self, host=None, port=None):
        self.host = host or settings.HL7_HOST
        self.port = settings.HL7_PORT if port is None else port
        self._loop = None
        self._server = None
        self._thread = None
        self._executor = None
        self._heartbeat = None
        self._ready = threading.Event()
        self._startup_error = None
        self._connections = set()

    # ---------------------------------------------------------------------------------------------------
    # The component

    def start(self):
        self._executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="hl7-message")
        self._thread = threading.Thread(target=self._run, name="hl7", daemon=True)
        self._thread.start()
        if not self._ready.wait(STARTUP_SECONDS):
            raise StartupError(f"HL7 listener did not start on {self.host}:{self.port} in {STARTUP_SECONDS} s")
        if self._startup_error is not None:
            self._thread.join(timeout=5)
            self._executor.shutdown(wait=False)
            raise StartupError(f"HL7 listener could not listen on {self.host}:{self.port}: {self._startup_error}")
        self._heartbeat = Heartbeat(self.name, detail=f"MLLP@{self.host}:{self.port}")
        self._heartbeat.start()
        logger.info("HL7 listener (MLLP) on %s:%s", self.host, self.port)

    def stop(self):
        if self._loop is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop)
            self._thread.join(timeout=15)
        if self._executor is not None:
            self._close_worker_connections()
            self._executor.shutdown(wait=True)
        if self._heartbeat is not None:
            self._heartbeat.stop()

    def is_alive(self):
        return self._thread is not None and self._thread.is_alive()

    # ---------------------------------------------------------------------------------------------------
    # The event loop thread

    def _run(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(start_hl7_server(
                self._serve_connection, self.host, self.port, limit=MAXIMUM_MESSAGE_BYTES))
        except OSError as exc:
            # asyncio rewrites the message ("error while attempting to bind on address ..."); the errno's own
            # text is the one line an operator needs.
            self._startup_error = os.strerror(exc.errno) if exc.errno else str(exc)
            self._ready.set()
            self._loop.close()
            return
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_until_complete(self._server.serve_forever())
        except asyncio.CancelledError:
            pass
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _close(self):
        self._server.close()
        for writer in list(self._connections):
            writer.close()
        await self._server.wait_closed()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    async def _serve_connection(self, reader, writer):
        sock = writer.get_extra_info("socket")
        # An ACK is a few hundred bytes written at once; without TCP_NODELAY the sender's delayed ACK and Nagle's
        # algorithm can hold each one back 40 ms (DESIGN.md section 6).
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = writer.get_extra_info("peername")
        peer_address = f"{peer[0]}:{peer[1]}" if peer else ""
        self._connections.add(writer)
        process = sync_to_async(_process, thread_sensitive=False, executor=self._executor)
        try:
            while True:
                try:
                    block = await reader.readblock()
                except asyncio.IncompleteReadError as exc:
                    if exc.partial.strip():
                        logger.warning("HL7 connection from %s closed in the middle of a message", peer_address)
                    break
                except InvalidBlockError:
                    logger.warning("HL7 connection from %s sent data outside an MLLP block; closing it",
                                   peer_address)
                    break
                except ValueError:
                    logger.warning("HL7 message from %s is longer than %d bytes; closing the connection",
                                   peer_address, MAXIMUM_MESSAGE_BYTES)
                    break
                ack = await process(block, peer_address)
                writer.writeblock(ack.encode("utf-8"))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(writer)
            writer.close()

    def _close_worker_connections(self):
        """Close the database connection of each worker thread (threads of a pool cannot be addressed one by
        one: as many tasks as workers, held at a barrier, land on distinct threads)."""
        barrier = threading.Barrier(WORKERS, timeout=5)

        def close():
            connection.close()
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                pass

        for future in [self._executor.submit(close) for _ in range(WORKERS)]:
            future.result()


def _process(block, peer_address):
    """One message, in a worker thread: its ACK text. Never raises: a message that crashes is answered AE by
    inbound.receive; a database that is down is answered AR here so the sender retries later."""
    _check_connection()
    try:
        return inbound.receive(block, peer_address).ack
    except Exception as exc:  # noqa: BLE001 - the sender must get an answer whatever happened
        logger.exception("HL7 message from %s could not be processed", peer_address)
        from worklist.hl7 import messages

        text = messages.normalise(messages.decode(block))
        problem = messages.MessageRejected(f"the message could not be processed or stored: {type(exc).__name__}",
                                           messages.APPLICATION_INTERNAL_ERROR)
        return messages.build_ack(messages.read_header(text), messages.REJECT, problem)


def _check_connection():
    """Each worker thread keeps its database connection from one message to the next: opening one per message
    (what CONN_MAX_AGE=0, SQLite's default, would do) costs more than the message's own queries. A connection
    that failed is replaced; a PostgreSQL connection is also renewed after CONN_MAX_AGE. The listener closes
    them all when it stops."""
    if connection.connection is None:
        return
    if connection.settings_dict["CONN_MAX_AGE"]:
        connection.close_if_unusable_or_obsolete()
    elif connection.errors_occurred and not connection.is_usable():
        connection.close()
    else:
        connection.errors_occurred = False
