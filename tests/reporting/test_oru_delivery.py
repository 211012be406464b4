"""Results out over HL7 (reporting/distribution.py, hl7_oru.py, outbound.py): an ORU^R01 for every active endpoint
when a report becomes final (OBR-25 F) or is amended (C), delivered over MLLP from the durable queue, retried with
back-off while the receiver is down, and a dead letter with an alert to administrators after the last attempt."""
import asyncio
import datetime
import threading

import hl7
import pytest
from django.utils import timezone
from hl7.mllp import start_hl7_server

from radiology.choices import AuditChannel, AuditEventCode
from radiology.models import AuditEvent
from reporting import hl7_oru, outbound, reports
from reporting.models import HL7Endpoint, OutboundMessage, OutboundStatus
from tests.factories import PASSWORD, PatientFactory
from tests.platform_process import free_port
from tests.worklist.factories import ProcedureTypeFactory, make_readable_order

pytestmark = pytest.mark.django_db
WEB = AuditChannel.WEB


class ResultReceiver:
    """An EHR's MLLP receiver on 127.0.0.1 (python-hl7's asyncio server in a thread): keeps what it receives and
    answers each message with an ACK whose MSA-1 is `answer`."""

    def __init__(self, port, answer="AA"):
        self.port, self.answer, self.received = port, answer, []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def stop(self):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self):
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self):
        self._stop = asyncio.Event()
        server = await start_hl7_server(self._connection, "127.0.0.1", self.port)
        self._ready.set()
        await self._stop.wait()
        server.close()
        await server.wait_closed()

    async def _connection(self, reader, writer):
        try:
            while True:
                message = hl7.parse((await reader.readblock()).decode("utf-8"))
                self.received.append(message)
                control_id = str(message.segment("MSH")(10))
                error = "|||207^Application internal error^HL70357|E" if self.answer == "AE" else ""
                ack = (f"MSH|^~\\&|EHR|HOSP|RADIOLOGY||20261128010000||ACK^R01^ACK|A{control_id}|P|2.5\r"
                       f"MSA|{self.answer}|{control_id}\r" + (f"ERR{error}||||Bad OBX\r" if error else ""))
                writer.writeblock(ack.encode("utf-8"))
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()


@pytest.fixture
def receiver():
    receiver = ResultReceiver(free_port()).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def endpoint(receiver):
    return HL7Endpoint.objects.create(name="EHR", host="127.0.0.1", port=receiver.port, receiving_application="EHR",
                                      receiving_facility="HOSP")


@pytest.fixture(autouse=True)
def no_task_queue(monkeypatch):
    """Delivery is driven by the tests here; the tasks the queue would send are recorded instead."""
    scheduled = []
    monkeypatch.setattr(outbound, "_schedule_delivery", lambda message_id: scheduled.append(message_id))
    monkeypatch.setattr(outbound, "_schedule_retry", lambda message_id, wait: scheduled.append((message_id, wait)))
    return scheduled


@pytest.fixture
def draft(radiologist, clinician):
    patient = PatientFactory(family_name="O'Brien|Smith", given_name="Ann", mrn="MRN-ORU-1",
                             birth_date=datetime.date(1970, 5, 17))
    order = make_readable_order(patient=patient, procedure=ProcedureTypeFactory(code="CTCHEST", name="CT CHEST"),
                                referring_physician=clinician, placer_order_number="PL-77")
    report = reports.start_report(order, radiologist, channel=WEB)
    return reports.save_draft(report, radiologist, version=report.version, channel=WEB, sections={
        "findings": "Right pneumothorax, 2 cm.\nNo effusion.", "impression": "Pneumothorax ^ needs a drain & review."})


def sign(report, radiologist):
    return reports.sign(report, radiologist, version=report.version, password=PASSWORD, channel=WEB)


def test_signing_queues_an_oru_for_each_active_endpoint(draft, radiologist, endpoint):
    HL7Endpoint.objects.create(name="Old EHR", host="127.0.0.1", port=1, active=False)

    report = sign(draft, radiologist)

    message = OutboundMessage.objects.get()
    assert (message.endpoint, message.report, message.status) == (endpoint, report, OutboundStatus.QUEUED)


def test_the_oru_carries_the_order_and_the_report_text_with_status_final(draft, radiologist, endpoint):
    report = sign(draft, radiologist)

    message = hl7.parse(OutboundMessage.objects.get().payload)
    msh, pid, obr = message.segment("MSH"), message.segment("PID"), message.segment("OBR")
    order = report.order
    assert str(msh(9)) == "ORU^R01^ORU_R01" and str(msh(12)) == "2.5" and str(msh(5)) == "EHR"
    assert str(pid(3)(1)(1)) == "MRN-ORU-1" and str(pid(7)) == "19700517"
    assert str(obr(2)) == "PL-77" and str(obr(18)) == order.accession_number
    assert str(obr(4)(1)(1)) == "CTCHEST" and str(obr(25)) == "F"
    lines = [message.unescape(str(obx(5))) for obx in message.segments("OBX")]
    assert "Right pneumothorax, 2 cm." in lines and "No effusion." in lines
    assert "Pneumothorax ^ needs a drain & review." in lines
    assert {str(obx(11)) for obx in message.segments("OBX")} == {"F"}
    assert message.unescape(str(pid(5)(1)(1))) == "O'Brien|Smith"


def test_an_addendum_sends_a_corrected_result(draft, radiologist, endpoint):
    report = sign(draft, radiologist)
    reports.add_addendum(report, radiologist, text="Drain placed; see follow-up.", password=PASSWORD, channel=WEB)

    corrected = hl7.parse(OutboundMessage.objects.order_by("pk").last().payload)
    assert str(corrected.segment("OBR")(25)) == "C"
    assert "Drain placed; see follow-up." in [str(obx(5)) for obx in corrected.segments("OBX")]
    assert "Right pneumothorax, 2 cm." in [str(obx(5)) for obx in corrected.segments("OBX")]


def test_the_receiver_acknowledges_and_the_message_is_sent(draft, radiologist, endpoint, receiver):
    sign(draft, radiologist)
    message = OutboundMessage.objects.get()

    outbound.deliver(message.pk)

    message.refresh_from_db()
    assert message.status == OutboundStatus.SENT and message.attempts == 1
    assert [str(received.segment("MSH")(10)) for received in receiver.received] == [message.control_id]
    assert "MSA|AA|" in message.ack


def test_a_receiver_that_was_down_gets_the_message_on_a_later_attempt(draft, radiologist, settings):
    settings.OUTBOUND_RETRY_SECONDS = 30
    port = free_port()
    HL7Endpoint.objects.create(name="EHR", host="127.0.0.1", port=port)
    sign(draft, radiologist)
    message = OutboundMessage.objects.get()
    first_attempt = timezone.now()

    outbound.deliver(message.pk, now=first_attempt)  # nothing listens yet: connection refused

    message.refresh_from_db()
    assert message.status == OutboundStatus.FAILED and message.attempts == 1
    assert message.next_attempt_at == first_attempt + datetime.timedelta(seconds=30)
    assert "127.0.0.1" in message.last_error
    receiver = ResultReceiver(port).start()
    try:
        assert outbound.deliver_due(now=first_attempt + datetime.timedelta(seconds=10)) == 0  # not due yet
        assert outbound.deliver_due(now=first_attempt + datetime.timedelta(seconds=31)) == 1
    finally:
        receiver.stop()
    message.refresh_from_db()
    assert message.status == OutboundStatus.SENT and message.attempts == 2
    assert len(receiver.received) == 1


def test_the_wait_doubles_after_every_failed_attempt_up_to_the_maximum(settings):
    settings.OUTBOUND_RETRY_SECONDS, settings.OUTBOUND_MAX_RETRY_SECONDS = 30, 200

    assert [outbound.backoff_seconds(attempts) for attempts in range(1, 6)] == [30, 60, 120, 200, 200]


def test_after_the_last_attempt_the_message_is_a_dead_letter_and_administrators_are_alerted(
        draft, radiologist, administrator, settings, monkeypatch, mailoutbox, django_capture_on_commit_callbacks):
    settings.OUTBOUND_MAX_ATTEMPTS = 3
    alerts = []
    monkeypatch.setattr(outbound, "notify_user", lambda user, kind, text, **fields: alerts.append((user, kind, text)))
    HL7Endpoint.objects.create(name="EHR", host="127.0.0.1", port=free_port())
    sign(draft, radiologist)
    message = OutboundMessage.objects.get()
    now = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            now += datetime.timedelta(hours=2)
            outbound.deliver_due(now=now)

    message.refresh_from_db()
    assert message.status == OutboundStatus.DEAD and message.attempts == 3
    assert [(user, kind) for user, kind, _ in alerts] == [(administrator, "outbound-dead-letter")]
    assert mailoutbox[0].to == [administrator.email] and message.control_id in mailoutbox[0].subject
    assert AuditEvent.objects.filter(code=AuditEventCode.SECURITY_ALERT, object_id=message.control_id).exists()
    assert outbound.deliver_due(now=now + datetime.timedelta(days=1)) == 0  # a dead letter is not tried again


def test_a_dead_letter_sent_again_from_the_admin_is_delivered(draft, radiologist, administrator, receiver):
    HL7Endpoint.objects.create(name="EHR", host="127.0.0.1", port=receiver.port)
    sign(draft, radiologist)
    message = OutboundMessage.objects.get()
    OutboundMessage.objects.filter(pk=message.pk).update(status=OutboundStatus.DEAD, attempts=8)

    assert outbound.requeue(message, administrator)
    outbound.deliver(message.pk)

    message.refresh_from_db()
    assert message.status == OutboundStatus.SENT and len(receiver.received) == 1


def test_an_application_error_answer_is_not_retried(draft, radiologist, administrator):
    receiver = ResultReceiver(free_port(), answer="AE").start()
    try:
        HL7Endpoint.objects.create(name="EHR", host="127.0.0.1", port=receiver.port)
        sign(draft, radiologist)
        message = OutboundMessage.objects.get()

        outbound.deliver(message.pk)
    finally:
        receiver.stop()

    message.refresh_from_db()
    assert message.status == OutboundStatus.DEAD and message.attempts == 1
    assert "AE" in message.last_error and "Bad OBX" in message.last_error


def test_a_corrected_result_does_not_overtake_the_final_one_it_corrects(draft, radiologist, settings):
    port = free_port()
    HL7Endpoint.objects.create(name="EHR", host="127.0.0.1", port=port)
    report = sign(draft, radiologist)
    final = OutboundMessage.objects.get()
    outbound.deliver(final.pk)  # refused: the receiver is down
    reports.add_addendum(report, radiologist, text="Addendum.", password=PASSWORD, channel=WEB)
    corrected = OutboundMessage.objects.exclude(pk=final.pk).get()

    receiver = ResultReceiver(port).start()
    try:
        assert outbound.deliver(corrected.pk) is None  # waits for the final one
        outbound.deliver_due(now=timezone.now() + datetime.timedelta(hours=1))
    finally:
        receiver.stop()

    assert [str(message.segment("OBR")(25)) for message in receiver.received] == ["F", "C"]


def test_text_with_hl7_delimiters_is_escaped():
    assert hl7_oru.escape("a|b^c&d~e\\f\ng") == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f g"


def test_the_queue_and_its_dead_letters_show_in_the_admin(draft, radiologist, administrator, client):
    HL7Endpoint.objects.create(name="EHR", host="127.0.0.1", port=free_port())
    sign(draft, radiologist)
    OutboundMessage.objects.update(status=OutboundStatus.DEAD, last_error="connection refused")
    client.force_login(administrator)

    page = client.get("/admin/reporting/outboundmessage/").content.decode()

    assert "Dead letter" in page and OutboundMessage.objects.get().control_id in page


def test_the_result_hook_hears_of_final_and_amended_reports_after_the_commit(
        draft, radiologist, django_capture_on_commit_callbacks):
    from reporting.distribution import report_final

    heard = []

    def fhir_publisher(sender, report, status, **kwargs):
        heard.append((report.pk, status))

    def broken_receiver(sender, **kwargs):
        raise RuntimeError("EHR down")

    report_final.connect(fhir_publisher)
    report_final.connect(broken_receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            report = sign(draft, radiologist)
        assert heard == [(report.pk, "final")]
        with django_capture_on_commit_callbacks(execute=True):
            reports.add_addendum(report, radiologist, text="More.", password=PASSWORD, channel=WEB)
    finally:
        report_final.disconnect(fhir_publisher)
        report_final.disconnect(broken_receiver)

    assert heard == [(report.pk, "final"), (report.pk, "amended")]


# Under `manage.py serve` -----------------------------------------------------------------------------------

SIGN_A_REPORT = """
import json
from django.contrib.auth import get_user_model
from radiology.choices import AuditChannel
from reporting import reports
from reporting.models import HL7Endpoint
from tests.worklist.factories import make_readable_order
endpoint = HL7Endpoint.objects.create(name="EHR {port}", host="127.0.0.1", port={port})
radiologist = get_user_model().objects.get(username="radiologist")
report = reports.start_report(make_readable_order(), radiologist, channel=AuditChannel.SYSTEM)
report = reports.save_draft(report, radiologist, version=report.version, channel=AuditChannel.SYSTEM,
                            sections={{"impression": "No acute finding."}})
reports.sign(report, radiologist, version=report.version, password="demo-radiologist", channel=AuditChannel.SYSTEM)
HL7Endpoint.objects.filter(pk=endpoint.pk).update(active=False)  # the other tests' reports are not for it
print(json.dumps({{"accession": report.order.accession_number}}))
"""


@pytest.mark.xdist_group("platform-process")
def test_serve_delivers_the_oru_of_a_signed_report_through_its_task_queue(running_platform, receiver):
    import json
    import time

    from tests.platform_process import manage

    signed = manage(running_platform.env, "shell", "--no-imports", "-c", SIGN_A_REPORT.format(port=receiver.port))
    accession = json.loads(signed.stdout.strip().splitlines()[-1])["accession"]
    for _ in range(300):  # the serve process's worker takes the task from the queue and sends it
        if receiver.received:
            break
        time.sleep(0.1)

    assert [str(message.segment("OBR")(18)) for message in receiver.received] == [accession], running_platform.log()
    assert str(receiver.received[0].segment("OBR")(25)) == "F"
