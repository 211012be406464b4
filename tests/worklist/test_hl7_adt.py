"""ADT^A01/A04/A08 from the EHR create or update the patient, over a real MLLP connection (python-hl7's client),
and each message is acknowledged AA with the sender's control ID."""
import datetime

import pytest

from radiology.choices import AuditEventCode, Sex
from radiology.models import AuditEvent, Patient
from tests.factories import PatientFactory
from tests.worklist.hl7_fixtures import adt, ack_code, module_hl7_listener, hl7_listener, ehr  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_a04_registers_a_new_patient_with_mrn_issuer_name_birth_date_and_sex(ehr):
    ack = ehr.send(adt("A04", control_id="REG1", mrn="MRN100", issuer="GENHOSP", family="Curie", given="Marie",
                       birth_date="19671107", sex="F"))

    assert ack_code(ack) == "AA"
    assert str(ack.segment("MSA")[2]) == "REG1"
    patient = Patient.objects.get(mrn="MRN100", issuer="GENHOSP")
    assert (patient.family_name, patient.given_name, patient.birth_date, patient.sex) == (
        "Curie", "Marie", datetime.date(1967, 11, 7), Sex.FEMALE)


def test_a08_updates_the_demographics_of_a_known_patient(ehr):
    PatientFactory(mrn="MRN200", issuer="GENHOSP", family_name="Sklodowska", given_name="Maria", sex=Sex.UNKNOWN)

    ack = ehr.send(adt("A08", mrn="MRN200", family="Curie", given="Marie", birth_date="19671107", sex="F"))

    assert ack_code(ack) == "AA"
    patient = Patient.objects.get(mrn="MRN200", issuer="GENHOSP")
    assert (patient.family_name, patient.given_name, patient.sex) == ("Curie", "Marie", Sex.FEMALE)
    assert AuditEvent.objects.filter(code=AuditEventCode.PATIENT_RECORD, patient=patient, action="U",
                                     channel="hl7", actor="EPIC/GENHOSP").exists()


def test_a01_for_a_known_patient_updates_it_rather_than_creating_another(ehr):
    PatientFactory(mrn="MRN300", issuer="GENHOSP", family_name="Roentgen", given_name="Wilhelm")

    ack = ehr.send(adt("A01", mrn="MRN300", family="Röntgen", given="Wilhelm Conrad", birth_date="18450327",
                       sex="M"))

    assert ack_code(ack) == "AA"
    [patient] = Patient.objects.filter(mrn="MRN300")
    assert (patient.family_name, patient.given_name) == ("Röntgen", "Wilhelm Conrad")


def test_the_same_mrn_from_another_issuer_is_another_patient(ehr):
    PatientFactory(mrn="MRN400", issuer="OTHERHOSP", family_name="Other")

    assert ack_code(ehr.send(adt("A04", mrn="MRN400", issuer="GENHOSP", family="Curie"))) == "AA"

    assert Patient.objects.get(mrn="MRN400", issuer="OTHERHOSP").family_name == "Other"
    assert Patient.objects.get(mrn="MRN400", issuer="GENHOSP").family_name == "Curie"


def test_an_invalid_birth_date_is_an_error_naming_pid_7_and_creates_nothing(ehr):
    ack = ehr.send(adt("A04", mrn="MRN500", birth_date="1967-11-07"))

    assert ack_code(ack) == "AE"
    assert ack.segment("ERR").extract_field(1, 2) == "PID"
    assert ack.segment("ERR").extract_field(1, 2, 1, 3) == "7"
    assert ack.segment("ERR").extract_field(1, 3) == "102"
    assert "PID-7" in ack.segment("ERR").extract_field(1, 8)
    assert not Patient.objects.filter(mrn="MRN500").exists()
