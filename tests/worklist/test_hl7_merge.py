"""ADT^A40 merges the patient named in MRG-1 into the one in PID-3: orders, archived studies and unmatched studies
move to the survivor, the merged record points at it, and the merge is audited as a Patient Record event."""
import pytest

from radiology.choices import AuditEventCode
from radiology.models import AuditEvent
from tests.archive.factories import ingest_dataset, make_dataset
from tests.factories import PatientFactory
from tests.worklist.factories import ProcedureTypeFactory, make_order
from tests.worklist.hl7_fixtures import (  # noqa: F401 (fixtures)
    ack_code, adt_merge, ehr, err_field, hl7_listener, module_hl7_listener,
)
from worklist.choices import OrderStatus
from worklist.models import UnmatchedStudy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def archive(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")


def study_of_duplicate(accession_number):
    """A study archived under the duplicate's MRN, as a modality sent it."""
    dataset = make_dataset(patient_id="MRN199", IssuerOfPatientID="GENHOSP", accession_number=accession_number)
    return ingest_dataset(dataset).instance.series.study


@pytest.fixture
def survivor():
    return PatientFactory(mrn="MRN100", issuer="GENHOSP", family_name="Curie", given_name="Marie")


@pytest.fixture
def duplicate():
    """The same person registered again under another MRN."""
    return PatientFactory(mrn="MRN199", issuer="GENHOSP", family_name="Curie", given_name="M")


def test_a40_moves_the_orders_to_the_survivor_and_marks_the_merged_record(ehr, survivor, duplicate):
    order = make_order(patient=duplicate, procedure=ProcedureTypeFactory())

    ack = ehr.send(adt_merge("MRN100", "MRN199"))

    assert ack_code(ack) == "AA", ack
    order.refresh_from_db()
    duplicate.refresh_from_db()
    assert order.patient == survivor
    assert duplicate.merged_into == survivor


def test_a40_moves_the_archived_studies_to_the_survivor(ehr, archive, survivor, duplicate):
    study = study_of_duplicate("")
    assert study.patient == duplicate

    assert ack_code(ehr.send(adt_merge("MRN100", "MRN199"))) == "AA"

    study.refresh_from_db()
    assert study.patient == survivor
    assert study.dicom_patient_id == "MRN199"  # the DICOM attributes stay as received


def test_an_unmatched_study_moves_and_is_linked_when_its_order_now_has_the_same_patient(
        ehr, archive, survivor, duplicate):
    order = make_order(patient=survivor, procedure=ProcedureTypeFactory(), accession_number="ACC555")
    study = study_of_duplicate("ACC555")
    assert UnmatchedStudy.objects.filter(study=study, resolved_at__isnull=True).exists()

    assert ack_code(ehr.send(adt_merge("MRN100", "MRN199"))) == "AA"

    order.refresh_from_db()
    assert (order.study, order.status) == (study, OrderStatus.COMPLETED)
    assert not UnmatchedStudy.objects.filter(study=study, resolved_at__isnull=True).exists()


def test_an_unmatched_study_without_an_order_moves_to_the_survivor_and_stays_on_the_exceptions_list(
        ehr, archive, survivor, duplicate):
    study = study_of_duplicate("NOORDER")

    assert ack_code(ehr.send(adt_merge("MRN100", "MRN199"))) == "AA"

    unmatched = UnmatchedStudy.objects.select_related("study").get(study=study)
    assert unmatched.study.patient == survivor
    assert unmatched.resolved_at is None


def test_the_merge_is_audited_as_a_patient_record_event_on_both_patients(ehr, survivor, duplicate):
    order = make_order(patient=duplicate, procedure=ProcedureTypeFactory())

    ehr.send(adt_merge("MRN100", "MRN199"))

    events = AuditEvent.objects.filter(code=AuditEventCode.PATIENT_RECORD, channel="hl7")
    assert {event.patient for event in events} == {survivor, duplicate}
    on_survivor = events.get(patient=survivor)
    assert (on_survivor.detail["merged_mrn"], on_survivor.detail["orders"]) == ("MRN199", [order.accession_number])


def test_merging_an_unknown_patient_is_an_error_naming_mrg_1(ehr, survivor):
    ack = ehr.send(adt_merge("MRN100", "MRN404"))

    assert ack_code(ack) == "AE"
    assert (err_field(ack, 2), err_field(ack, 3)) == ("MRG", "204")
    assert "MRN404" in err_field(ack, 8)


def test_merging_into_an_unknown_survivor_is_an_error_and_moves_nothing(ehr, duplicate):
    order = make_order(patient=duplicate, procedure=ProcedureTypeFactory())

    ack = ehr.send(adt_merge("MRN404", "MRN199"))

    assert ack_code(ack) == "AE"
    assert (err_field(ack, 2), err_field(ack, 3)) == ("PID", "204")
    order.refresh_from_db()
    duplicate.refresh_from_db()
    assert (order.patient, duplicate.merged_into) == (duplicate, None)
