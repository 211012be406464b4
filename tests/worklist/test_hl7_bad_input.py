"""Malformed or unusable HL7 gets an answer in HL7's own terms, AR when the message cannot be processed at all
and AE when its content is wrong, with an ERR segment saying what and where; nothing of it is applied, and the
message is kept as received."""
import hl7
import pytest

from radiology.models import Patient
from tests.factories import PatientFactory
from tests.worklist.factories import ProcedureTypeFactory
from tests.worklist.hl7_fixtures import (  # noqa: F401 (fixtures)
    ack_code, adt, ehr, err_field, hl7_listener, module_hl7_listener, msh, orm, pid,
)
from worklist.models import InboundMessage, Order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def curie():
    return PatientFactory(mrn="MRN100", issuer="GENHOSP", family_name="Curie")


@pytest.fixture
def ct_head():
    return ProcedureTypeFactory(code="CTHEAD", modality="CT")


def test_a_message_without_msh_is_rejected_and_kept(ehr):
    ack = ehr.send("PID|1||MRN900^^^GENHOSP^MR||Nobody^Noone\rPV1|1|O")

    assert ack_code(ack) == "AR"
    assert err_field(ack, 3) == "100"
    assert "must begin with an MSH segment" in err_field(ack, 8)
    stored = InboundMessage.objects.get()
    assert (stored.outcome, stored.applied) == ("AR", False)
    assert stored.raw.startswith("PID|1||MRN900")
    assert not Patient.objects.filter(mrn="MRN900").exists()


def test_bad_encoding_characters_are_rejected(ehr):
    message = adt("A04", mrn="MRN901").replace("MSH|^~\\&|", "MSH|^^|", 1)

    ack = ehr.send(message)

    assert ack_code(ack) == "AR"
    assert (err_field(ack, 2), err_field(ack, 3)) == ("MSH", "102")
    assert "encoding characters" in err_field(ack, 8)
    assert not Patient.objects.filter(mrn="MRN901").exists()


def test_a_missing_msh_10_control_id_is_rejected(ehr):
    ack = ehr.send(adt("A04", control_id="", mrn="MRN902"))

    assert ack_code(ack) == "AR"
    assert err_field(ack, 3) == "101"
    assert "MSH-10" in err_field(ack, 8)
    assert str(ack.segment("MSA")[2]) == ""
    assert not Patient.objects.filter(mrn="MRN902").exists()


def test_an_unsupported_message_type_is_rejected(ehr):
    message = "\r".join([msh("ORU^R01^ORU_R01", "RES1"), pid(mrn="MRN903"), "OBR|1", "OBX|1|TX|||text"])

    ack = ehr.send(message)

    assert ack_code(ack) == "AR"
    assert err_field(ack, 3) == "200"
    assert "ORU^R01 is not supported" in err_field(ack, 8)
    assert str(ack.segment("MSA")[2]) == "RES1"


def test_an_unsupported_event_of_a_supported_type_is_rejected(ehr):
    ack = ehr.send(adt("A99", mrn="MRN904"))

    assert ack_code(ack) == "AR"
    assert err_field(ack, 3) == "201"
    assert not Patient.objects.filter(mrn="MRN904").exists()


def test_an_order_for_a_procedure_not_in_the_catalogue_is_an_error_naming_obr_4(ehr, curie, ct_head):
    ack = ehr.send(orm("NW", placer="PL1", procedure="XRFOOT"))

    assert ack_code(ack) == "AE"
    assert (err_field(ack, 2), err_field(ack, 2, 3), err_field(ack, 3)) == ("OBR", "4", "103")
    assert "XRFOOT is not in the procedure catalogue" in err_field(ack, 8)
    assert not Order.objects.exists()
    assert InboundMessage.objects.get().outcome == "AE"


def test_an_order_for_an_unknown_patient_is_an_error_and_creates_no_patient(ehr, ct_head):
    ack = ehr.send(orm("NW", mrn="MRN905", placer="PL2"))

    assert ack_code(ack) == "AE"
    assert (err_field(ack, 2), err_field(ack, 3)) == ("PID", "204")
    assert "unknown patient MRN MRN905 (issuer GENHOSP)" in err_field(ack, 8)
    assert not Order.objects.exists()
    assert not Patient.objects.filter(mrn="MRN905").exists()


def test_an_obr_24_modality_contradicting_the_procedure_is_an_error(ehr, curie, ct_head):
    ProcedureTypeFactory(code="MRHEAD", modality="MR")

    ack = ehr.send(orm("NW", placer="PL3", procedure="CTHEAD", modality="MR"))

    assert ack_code(ack) == "AE"
    assert "OBR-24 modality MR does not match procedure CTHEAD (CT)" in err_field(ack, 8)
    assert not Order.objects.exists()


def test_an_unknown_priority_is_an_error(ehr, curie, ct_head):
    ack = ehr.send(orm("NW", placer="PL4", priority="Z"))

    assert ack_code(ack) == "AE"
    assert "priority Z is not one of S (stat), A (asap), R (routine)" in err_field(ack, 8)


def test_an_unreadable_start_time_is_a_data_type_error(ehr, curie, ct_head):
    ack = ehr.send(orm("NW", placer="PL5", start="tomorrow"))

    assert ack_code(ack) == "AE"
    assert (err_field(ack, 2), err_field(ack, 3)) == ("TQ1", "102")


def test_a_message_whose_second_order_fails_applies_neither(ehr, curie, ct_head):
    first_order = orm("NW", placer="PL6")
    second_order = orm("NW", placer="PL7", procedure="UNKNOWN").split("\r")[3:]  # its ORC, TQ1 and OBR
    message = "\r".join([first_order, *second_order])

    ack = ehr.send(message)

    assert ack_code(ack) == "AE"
    assert "UNKNOWN is not in the procedure catalogue" in err_field(ack, 8)
    assert not Order.objects.exists()


def test_hl7_delimiters_in_the_error_text_are_escaped(ehr, curie, ct_head):
    raw_ack = ehr.send_raw(orm("NW", placer="PL8", procedure="CT\\T\\HEAD"))  # the code "CT&HEAD", escaped

    assert b"CT\\T\\HEAD is not in the procedure catalogue" in raw_ack
    ack = hl7.parse(raw_ack.decode())
    assert ack_code(ack) == "AE"
    assert "CT&HEAD is not in the procedure catalogue" in err_field(ack, 8)
