"""Every inbound HL7 message is acknowledged in original mode, kept raw with its outcome, and applied once:
a message whose sending application, facility and control ID were already applied gets AA again and changes
nothing."""
import pytest

from radiology.models import Patient
from tests.factories import PatientFactory
from tests.worklist.factories import ProcedureTypeFactory
from tests.worklist.hl7_fixtures import (  # noqa: F401 (fixtures)
    ack_code, adt, ehr, hl7_listener, module_hl7_listener, orm,
)
from worklist.models import InboundMessage, Order

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_ack_header_mirrors_the_sender_with_a_new_control_id_and_the_message_version(ehr):
    ack = ehr.send(adt("A04", control_id="HDR1", mrn="MRN100"))

    header = ack.segment("MSH")
    assert [str(header[number]) for number in (3, 4, 5, 6)] == ["RADIOLOGY", "RADDEPT", "EPIC", "GENHOSP"]
    assert str(header[9]) == "ACK^A04^ACK"
    assert str(header[10]) not in ("", "HDR1")
    assert str(header[12]) == "2.5.1"
    assert [str(field) for field in ack.segment("MSA")[1:3]] == ["AA", "HDR1"]


def test_each_message_is_kept_raw_with_sender_type_outcome_and_peer(ehr):
    message = adt("A04", control_id="KEEP1", mrn="MRN101")

    ehr.send(message)

    stored = InboundMessage.objects.get()
    assert stored.raw == message
    assert (stored.control_id, stored.sending_application, stored.sending_facility, stored.message_type) == (
        "KEEP1", "EPIC", "GENHOSP", "ADT^A04")
    assert (stored.outcome, stored.applied, stored.error) == ("AA", True, "")
    assert stored.peer_address.startswith("127.0.0.1:")
    assert stored.processed_at is not None


def test_a_message_sent_again_with_the_same_control_id_is_acknowledged_and_not_applied_twice(ehr):
    PatientFactory(mrn="MRN100", issuer="GENHOSP")
    ProcedureTypeFactory(code="CTHEAD", modality="CT")
    message = orm("NW", control_id="ORD1", placer="PL1")

    first, second = ehr.send(message), ehr.send(message)

    assert (ack_code(first), ack_code(second)) == ("AA", "AA")
    assert str(second.segment("MSA")[2]) == "ORD1"
    assert Order.objects.count() == 1
    resent = InboundMessage.objects.order_by("pk").last()
    assert (resent.outcome, resent.applied) == ("AA", False)
    assert "not applied again" in resent.error


def test_the_same_control_id_from_another_sending_application_is_another_message(ehr):
    ehr.send(adt("A04", control_id="SAME1", mrn="MRN102", family="First"))
    other = adt("A04", control_id="SAME1", mrn="MRN102", family="Second").replace("|EPIC|", "|CERNER|", 1)

    assert ack_code(ehr.send(other)) == "AA"

    assert Patient.objects.get(mrn="MRN102").family_name == "Second"
    assert InboundMessage.objects.filter(applied=True).count() == 2


def test_a_message_that_failed_is_applied_when_sent_again_after_the_cause_is_fixed(ehr):
    PatientFactory(mrn="MRN100", issuer="GENHOSP")
    message = orm("NW", control_id="RETRY1", placer="PL2", procedure="MRKNEE", modality="MR")
    assert ack_code(ehr.send(message)) == "AE"
    ProcedureTypeFactory(code="MRKNEE", modality="MR")

    assert ack_code(ehr.send(message)) == "AA"

    assert Order.objects.get().procedure.code == "MRKNEE"


def test_several_messages_on_one_connection_are_each_acknowledged_in_order(ehr):
    acks = [ehr.send(adt("A04", control_id=f"SEQ{n}", mrn=f"MRN2{n}")) for n in range(5)]

    assert [str(ack.segment("MSA")[2]) for ack in acks] == [f"SEQ{n}" for n in range(5)]
    assert Patient.objects.filter(mrn__startswith="MRN2").count() == 5


def test_a_latin_1_message_is_read_and_kept(ehr):
    message = adt("A04", control_id="LATIN1", mrn="MRN103", family="Röntgen").encode("latin-1")

    assert ack_code(ehr.send(message)) == "AA"

    assert Patient.objects.get(mrn="MRN103").family_name == "Röntgen"
