"""The HL7 listener as a component of `serve`: start() returns once it listens or says in one line why it cannot,
stop() closes the port and the open connections."""
import socket

import pytest
from hl7.client import MLLPClient

from radiology.server import StartupError
from tests.worklist.hl7_fixtures import adt, running_hl7_listener
from worklist.hl7.mllp import HL7Listener

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_port_in_use_stops_start_up_with_one_line():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        listener = HL7Listener(host="127.0.0.1", port=port)

        with pytest.raises(StartupError) as refused:
            listener.start()

    assert str(refused.value) == f"HL7 listener could not listen on 127.0.0.1:{port}: Address already in use"
    assert not listener.is_alive()


def test_stop_closes_the_port_and_the_open_connections():
    with running_hl7_listener() as listener:
        assert listener.is_alive()
        port = listener.port
        client = MLLPClient("127.0.0.1", port)
    try:
        assert not listener.is_alive()
        assert client.socket.recv(1) == b""  # closed by the listener
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
    finally:
        client.close()


def test_data_outside_an_mllp_block_closes_the_connection_without_an_answer():
    with running_hl7_listener() as listener, socket.create_connection(("127.0.0.1", listener.port)) as peer:
        peer.sendall(adt("A04").encode() + b"\x1c\r")  # no start block character
        peer.settimeout(10)
        assert peer.recv(100) == b""
