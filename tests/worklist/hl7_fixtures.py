"""The HL7 listener in the test process, python-hl7's MLLP client to talk to it, and the messages an EHR sends.

The listener processes messages in its own threads with their own database connections, so the tests that use
it are marked `django_db(transaction=True)`: those threads only see committed rows.
"""
import itertools
from contextlib import contextmanager
from unittest import mock

import hl7
import pytest
from hl7.client import MLLPClient

from worklist.hl7.mllp import HL7Listener

_control_ids = itertools.count(1)


class _NoHeartbeat:
    """As in tests/archive/listener_peers.py: the heartbeat thread's writes would collide with the test's own on
    the in-memory SQLite database; `serve` tests cover the heartbeat."""

    def __init__(self, component, detail=""):
        pass

    def start(self):
        pass

    def stop(self):
        pass


@contextmanager
def running_hl7_listener():
    """An HL7Listener on 127.0.0.1 and a free port (the kernel's pick), without heartbeat."""
    with mock.patch("worklist.hl7.mllp.Heartbeat", _NoHeartbeat):
        listener = HL7Listener(host="127.0.0.1", port=0)
        listener.start()
        try:
            yield listener
        finally:
            listener.stop()


@pytest.fixture(scope="module")
def module_hl7_listener(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), running_hl7_listener() as listener:
        yield listener


@pytest.fixture
def hl7_listener(module_hl7_listener):
    return module_hl7_listener


@pytest.fixture
def ehr(hl7_listener):
    """python-hl7's blocking MLLP client connected to the listener, as the EHR's interface engine."""
    with MLLPClient("127.0.0.1", hl7_listener.port) as client:
        yield EHR(client)


class EHR:
    def __init__(self, client):
        self.client = client

    def send(self, message):
        """Send one message (text with CR between segments, or bytes) and return the ACK as a python-hl7
        Message."""
        return hl7.parse(self.send_raw(message).decode("utf-8"))

    def send_raw(self, message):
        """Send one message and return the ACK block's bytes (without the MLLP framing)."""
        data = message if isinstance(message, bytes) else message.encode("utf-8")
        reply = self.client.send_message(data)
        while not reply.endswith(b"\x1c\x0d"):
            reply += self.client.socket.recv(4096)
        assert reply.startswith(b"\x0b"), reply
        return reply[1:-2]


def next_control_id():
    return f"MSG{next(_control_ids):06d}"


def msh(message_type, control_id=None, sending_application="EPIC", sending_facility="GENHOSP", version="2.5.1"):
    control_id = next_control_id() if control_id is None else control_id
    return (f"MSH|^~\\&|{sending_application}|{sending_facility}|RADIOLOGY|RADDEPT|20261128080000||{message_type}|"
            f"{control_id}|P|{version}")


def pid(mrn="MRN100", issuer="GENHOSP", family="Curie", given="Marie", birth_date="19671107", sex="F"):
    return f"PID|1||{mrn}^^^{issuer}^MR||{family}^{given}||{birth_date}|{sex}"


def adt(event="A04", control_id=None, **patient):
    return "\r".join([msh(f"ADT^{event}^ADT_{'A01' if event != 'A40' else 'A39'}", control_id),
                      f"EVN|{event}|20261128080000", pid(**patient), "PV1|1|O"])


def adt_merge(survivor_mrn, merged_mrn, issuer="GENHOSP", control_id=None):
    return "\r".join([msh("ADT^A40^ADT_A39", control_id), "EVN|A40|20261128080000",
                      pid(mrn=survivor_mrn, issuer=issuer), f"MRG|{merged_mrn}^^^{issuer}^MR"])


def orm(control="NW", *, mrn="MRN100", issuer="GENHOSP", placer="PL1001", filler="", procedure="CTHEAD",
        accession="", requested_procedure_id="", step_id="", modality="CT", priority="R", start="",
        referring="gregory^House^Gregory", reason="", order_status="", control_id=None, tq1=True):
    """An ORM^O01 with one order: ORC-7 carries priority and start (v2.3 style) unless `tq1` puts them in TQ1."""
    timing = "" if tq1 else f"^^^{start}^^{priority}"
    obr = _fields(31, {1: "1", 2: placer, 3: filler, 4: f"{procedure}^{procedure} study^99LOCAL",
                            18: accession, 19: requested_procedure_id, 20: step_id, 24: modality, 31: reason})
    orc = _fields(16, {1: control, 2: placer, 3: filler, 5: order_status, 7: timing, 9: "20261128080000",
                       16: reason})
    segments = [msh("ORM^O01^ORM_O01", control_id), pid(mrn=mrn, issuer=issuer),
                "PV1|" + _fields(8, {1: "1", 2: "O", 8: referring}), "ORC|" + orc]
    if tq1:
        segments.append("TQ1|" + _fields(9, {1: "1", 7: start, 9: priority}))
    segments.append("OBR|" + obr)
    return "\r".join(segments)


def _fields(count, values):
    """Fields 1..count of a segment (after its name), joined by |."""
    return "|".join(values.get(number, "") for number in range(1, count + 1))


def ack_code(ack):
    return str(ack.segment("MSA")[1])


def err_field(ack, field, component=1):
    return ack.segment("ERR").extract_field(1, field, 1, component)
