"""The filesystem task queue (radiology/task_queue.py): no consumer ever sees half a message, an unreadable message
file is set aside instead of stopping the worker, and messages published at once from several threads are each
consumed exactly once. These run kombu's real filesystem transport in a temporary folder."""
import json
import logging
import os
import queue as queue_module
import threading

import kombu
import pytest
from django.conf import settings
from kombu.exceptions import ChannelError
from kombu.transport import virtual

from radiology import task_queue

TRANSPORT = "radiology.task_queue:Transport"


@pytest.fixture
def queue_dir(tmp_path, monkeypatch):
    # kombu keeps the declared bindings per process; each test starts with an empty broker of its own.
    monkeypatch.setattr(task_queue.Transport, "global_state", virtual.BrokerState())
    for folder in ("queue", "processed", "failed", "control"):
        (tmp_path / folder).mkdir()
    return tmp_path


def connect(queue_dir):
    return kombu.Connection("filesystem://", transport=TRANSPORT, transport_options={
        "data_folder_in": str(queue_dir / "queue"), "data_folder_out": str(queue_dir / "queue"),
        "processed_folder": str(queue_dir / "processed"), "failed_folder": str(queue_dir / "failed"),
        "control_folder": str(queue_dir / "control"), "polling_interval": 0.01,
    })


TASKS = kombu.Queue("celery", kombu.Exchange("celery", "direct"), routing_key="celery")


def publish(connection, body):
    kombu.Producer(connection.default_channel).publish(body, exchange=TASKS.exchange, routing_key="celery",
                                                       declare=[TASKS], serializer="json")


def consume_all(connection):
    """Everything in the queue now, in order, each acknowledged."""
    received = []
    with kombu.Consumer(connection, [TASKS], accept=["json"],
                        callbacks=[lambda body, message: (received.append(body), message.ack())]):
        while True:
            try:
                connection.drain_events(timeout=0.2)
            except TimeoutError:
                return received


def test_a_half_written_message_file_is_set_aside_and_the_next_message_is_delivered(queue_dir, caplog):
    with connect(queue_dir) as connection:
        publish(connection, {"order": "after the broken ones"})
        # Named to sort first, as kombu's own transport leaves a message it has created but not yet written.
        (queue_dir / "queue" / "000000000000001_broken.celery.msg").write_text('{"body": "eyJ0YXNrIjo')
        (queue_dir / "queue" / "000000000000002_empty.celery.msg").write_bytes(b"")

        with caplog.at_level(logging.ERROR, logger="radiology.task_queue"):
            received = consume_all(connection)

    assert received == [{"order": "after the broken ones"}]
    assert sorted(os.listdir(queue_dir / "failed")) == ["000000000000001_broken.celery.msg",
                                                        "000000000000002_empty.celery.msg"]
    assert os.listdir(queue_dir / "queue") == []
    assert "000000000000001_broken.celery.msg is unreadable" in caplog.text


def test_json_that_is_not_a_message_is_set_aside_too(queue_dir):
    with connect(queue_dir) as connection:
        TASKS(connection.default_channel).declare()
        (queue_dir / "queue" / "000000000000001_list.celery.msg").write_text(json.dumps(["not", "a", "message"]))
        publish(connection, {"order": 1})

        assert consume_all(connection) == [{"order": 1}]

    assert os.listdir(queue_dir / "failed") == ["000000000000001_list.celery.msg"]


def test_a_consumer_polling_while_a_message_is_written_finds_nothing_yet(queue_dir, monkeypatch):
    seen_mid_write = []
    real_fsync = os.fsync

    def fsync_and_poll(fd):
        # The message's bytes are all written here; a consumer looking now must not get a partial message.
        with connect(queue_dir) as consumer:
            channel = consumer.default_channel
            try:
                seen_mid_write.append(channel._get("celery"))
            except queue_module.Empty:
                seen_mid_write.append("empty")
        real_fsync(fd)

    with connect(queue_dir) as connection:
        TASKS(connection.default_channel).declare()
        monkeypatch.setattr(task_queue.os, "fsync", fsync_and_poll)
        publish(connection, {"order": 1})
        monkeypatch.setattr(task_queue.os, "fsync", real_fsync)

        assert seen_mid_write == ["empty"]
        assert consume_all(connection) == [{"order": 1}]


def test_messages_published_at_once_from_several_threads_are_each_consumed_exactly_once(queue_dir):
    publishers, per_publisher = 4, 150
    with connect(queue_dir) as connection:
        TASKS(connection.default_channel).declare()
    received, lock, publishing_done = [], threading.Lock(), threading.Event()

    def publisher(number):
        with connect(queue_dir) as connection:
            for sequence in range(per_publisher):
                publish(connection, {"id": f"{number}-{sequence}"})

    def consumer():
        # Two consumers on their own connections compete for every message, as two workers on one data dir would.
        def on_message(body, message):
            with lock:
                received.append(body["id"])
            message.ack()

        with connect(queue_dir) as connection, kombu.Consumer(connection, [TASKS], accept=["json"],
                                                              callbacks=[on_message]):
            while True:
                try:
                    connection.drain_events(timeout=0.2)
                except TimeoutError:
                    if publishing_done.is_set() and not os.listdir(queue_dir / "queue"):
                        return

    consumers = [threading.Thread(target=consumer) for _ in range(2)]
    producers = [threading.Thread(target=publisher, args=(number,)) for number in range(publishers)]
    for thread in consumers + producers:
        thread.start()
    for thread in producers:
        thread.join()
    publishing_done.set()
    for thread in consumers:
        thread.join()

    expected = sorted(f"{number}-{sequence}" for number in range(publishers) for sequence in range(per_publisher))
    assert sorted(received) == expected
    assert os.listdir(queue_dir / "failed") == []


def test_bindings_made_at_once_on_a_new_exchange_are_all_kept(queue_dir):
    queues = [kombu.Queue(f"q{number}", kombu.Exchange("fresh", "direct"), routing_key=f"q{number}")
              for number in range(8)]
    start = threading.Barrier(len(queues))

    def bind(task_queue_):
        with connect(queue_dir) as connection:
            start.wait()
            task_queue_(connection.default_channel).declare()

    threads = [threading.Thread(target=bind, args=(q,)) for q in queues]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with connect(queue_dir) as connection:
        bound = {binding.queue for binding in connection.default_channel.get_table("fresh")}
    assert bound == {f"q{number}" for number in range(8)}
    assert [name for name in os.listdir(queue_dir / "control") if name.startswith(".")] == []


def test_a_queue_the_consumer_cannot_claim_from_raises_the_error_celery_retries(queue_dir):
    with connect(queue_dir) as connection:
        publish(connection, {"order": 1})
        (queue_dir / "processed").rmdir()

        with pytest.raises(ChannelError, match="Cannot claim message"):
            connection.default_channel._get("celery")

    assert len(os.listdir(queue_dir / "queue")) == 1  # still queued, for when the folder is back


@pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="Redis deployments keep Redis as the broker")
def test_the_platform_uses_this_transport_with_its_folders_in_the_data_dir():
    from radiology.celery import app

    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, task_queue.Transport)
        assert isinstance(ChannelError(), connection.channel_errors)
        options = connection.transport_options
    assert app.conf.broker_channel_error_retry
    task_dir = str(settings.TASK_QUEUE_DIR)
    for option in ("data_folder_in", "data_folder_out", "processed_folder", "failed_folder", "control_folder"):
        assert options[option].startswith(task_dir), option
