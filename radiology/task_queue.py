"""The task queue's broker when there is no Redis (radiology/settings.py, CELERY_BROKER_TRANSPORT): kombu's
filesystem transport, with the message files written and claimed so that no reader ever sees half a message.

kombu's own transport (kombu/transport/filesystem.py) creates each message file under its final `*.msg` name and
only then writes the JSON into it; its flock is advisory and the consumer never takes it. A worker listing the
folder in between claims the empty or half-written file, `json.loads` raises JSONDecodeError inside the Celery
consumer, the worker stops, and `manage.py serve` shuts down with it; the publisher's message is lost as well.
With the web server, the HL7 listener, the DICOM listener's processes and the beat thread all queueing tasks while
the worker consumes, that window is hit now and then. Here:

- a message is written under a hidden temporary name in the same folder, fsynced, then renamed to its `*.msg`
  name, which is atomic: the consumer only ever lists complete messages;
- a consumer claims a message by renaming it into the processed folder (same file system, atomic), so with
  several consumers each message is delivered exactly once;
- a message file that still cannot be read as a message (a disk fault, a file put there by hand or by an older
  writer) is moved to the `failed` folder and logged, and the worker goes on with the next one;
- an exchange's binding table (control folder) is created complete, never as an empty file a reader could see.

Redis deployments (REDIS_URL) do not use this module.
"""
import logging
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

# Files being written: a name kombu's consumers never match (theirs end in ".<queue>.msg").
PARTIAL_PREFIX = ".partial-"


def _write_complete(folder, name, data):
    """Write `data` as folder/name so that the name appears only once the whole content is on disk."""
    partial = os.path.join(folder, f"{PARTIAL_PREFIX}{uuid.uuid4().hex}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(partial, os.path.join(folder, name))
    except BaseException:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
        raise


def _is_message(payload):
    # What kombu's virtual Message needs; anything else would fail later, inside the consumer.
    return (isinstance(payload, dict) and isinstance(payload.get("properties"), dict)
            and isinstance(payload["properties"].get("delivery_info"), dict))


class Channel(filesystem.Channel):

    def _put(self, queue, payload, **kwargs):
        # kombu's naming (time in ms, uuid, queue), the time zero-padded so that sorting the names keeps the order.
        name = f"{int(round(monotonic() * 1000)):015d}_{uuid.uuid4()}.{queue}.msg"
        try:
            _write_complete(self.data_folder_out, name, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r} to {self.data_folder_out!r}") from exc

    def _get(self, queue):
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            queued, claimed = os.path.join(self.data_folder_in, name), os.path.join(self.processed_folder, name)
            try:
                os.rename(queued, claimed)
            except OSError as exc:
                if isinstance(exc, FileNotFoundError) and not os.path.exists(queued):
                    continue  # another consumer claimed it first
                # A ChannelError makes Celery reconnect and retry (broker_channel_error_retry); any other exception
                # would stop the worker.
                raise ChannelError(f"Cannot claim message {name!r} into {self.processed_folder!r}") from exc
            try:
                with open(claimed, "rb") as message_file:
                    data = message_file.read()
            except OSError as exc:
                raise ChannelError(f"Cannot read message {claimed!r}") from exc
            try:
                payload = loads(bytes_to_str(data))
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                self._set_aside(claimed, f"not JSON ({exc})")
                continue
            if not _is_message(payload):
                self._set_aside(claimed, "not a kombu message")
                continue
            if not self.store_processed:
                os.remove(claimed)
            return payload
        raise filesystem.Empty()

    def _set_aside(self, path, reason):
        destination = os.path.join(self.failed_folder, os.path.basename(path))
        try:
            os.makedirs(self.failed_folder, exist_ok=True)
            os.rename(path, destination)
        except OSError as exc:
            # It is out of the queue already (claimed into the processed folder); leave it there.
            destination = f"nowhere ({exc}); it stays at {path}"
        logger.error("task queue: message %s is unreadable (%s); moved to %s, the worker goes on",
                     os.path.basename(path), reason, destination)

    @property
    def failed_folder(self):
        return self.transport_options.get(
            "failed_folder", os.path.join(os.path.dirname(os.path.abspath(self.processed_folder)), "failed"))

    def get_table(self, exchange):
        file = self._exchange_file(exchange)
        try:
            with file.open("rb") as table_file:
                filesystem.lock(table_file, filesystem.LOCK_SH)
                try:
                    data = table_file.read()
                finally:
                    filesystem.unlock(table_file)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        return [filesystem.exchange_queue_t(*binding) for binding in loads(bytes_to_str(data))]

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        if not file.exists():
            # kombu opens a new table with "wb" (truncating whatever another binder just wrote) before locking it;
            # here a complete table is linked into place, and only one binder can win that.
            partial = self.control_folder / f"{PARTIAL_PREFIX}{uuid.uuid4().hex}"
            partial.write_bytes(str_to_bytes(dumps([binding])))
            try:
                os.link(partial, file)
                return
            except FileExistsError:
                pass  # another binder created it first: add the binding to theirs below
            finally:
                partial.unlink()
        try:
            with file.open("rb+", buffering=0) as table_file:
                filesystem.lock(table_file, filesystem.LOCK_EX)
                try:
                    bindings = [filesystem.exchange_queue_t(*b) for b in loads(bytes_to_str(table_file.read()))]
                    if binding not in bindings:
                        bindings.insert(0, binding)
                        table_file.seek(0)
                        table_file.write(str_to_bytes(dumps(bindings)))
                        table_file.truncate()
                finally:
                    filesystem.unlock(table_file)
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
