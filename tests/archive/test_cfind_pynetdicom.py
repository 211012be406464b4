"""C-FIND SCP against a pynetdicom SCU: cancel, combined date-time negotiation, permissions, character sets."""
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as StudyRootFind

from archive.models import Study
from radiology.choices import AuditEventCode, AuditOutcome
from radiology.models import AuditEvent
from tests.archive.qr_network import ARCHIVE_AET, register
from tests.archive.query_archive import build_department, identifier
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db(transaction=True)

PENDING, CANCEL, SUCCESS = 0xFF00, 0xFE00, 0x0000


def associate(qr_listener, ae_title="PYSCU", ext_neg=None):
    ae = AE(ae_title=ae_title)
    ae.add_requested_context(StudyRootFind)
    association = ae.associate("127.0.0.1", qr_listener.port, ae_title=ARCHIVE_AET, ext_neg=ext_neg)
    assert association.is_established
    return association


def statuses_and_identifiers(responses):
    return [(status.Status, found) for status, found in responses]


def test_a_cancelled_c_find_stops_with_a_cancel_status(qr_listener):
    patient = PatientFactory()
    Study.objects.bulk_create(
        Study(study_instance_uid=generate_uid(), patient=patient, dicom_patient_id=patient.mrn,
              study_date="20260101", study_description=f"STUDY {number}") for number in range(2000))
    association = associate(qr_listener)
    try:
        responses = association.send_c_find(identifier("STUDY", StudyDescription=""), StudyRootFind, msg_id=7)
        first_status, _ = next(responses)
        assert first_status.Status == PENDING
        context_id = next(cx.context_id for cx in association.accepted_contexts
                          if cx.abstract_syntax == StudyRootFind)
        association.send_c_cancel(7, context_id)
        rest = statuses_and_identifiers(responses)
    finally:
        association.release()
    assert rest[-1] == (CANCEL, None)
    assert len(rest) < 2000
    event = AuditEvent.objects.get(code=AuditEventCode.QUERY)
    assert event.detail["cancelled"] is True


def combined_date_time_negotiation():
    item = SOPClassExtendedNegotiation()
    item.sop_class_uid = StudyRootFind
    item.service_class_application_information = b"\x00\x01"  # PS3.4 C.5.1.1.2: byte 2, date-time matching
    return item


def test_combined_date_time_matching_applies_when_the_scu_negotiated_it(qr_listener):
    build_department()
    query = identifier("STUDY", StudyDate="20251231-20260115", StudyTime="2300-1100", AccessionNumber="")
    plain = associate(qr_listener)
    try:
        separate = [found.AccessionNumber for status, found in plain.send_c_find(query, StudyRootFind) if found]
    finally:
        plain.release()
    negotiated = associate(qr_listener, ext_neg=[combined_date_time_negotiation()])
    try:
        accepted = negotiated.acceptor.sop_class_extended
        combined = sorted(found.AccessionNumber for status, found in negotiated.send_c_find(query, StudyRootFind)
                          if found)
    finally:
        negotiated.release()
    assert separate == []
    assert accepted == {StudyRootFind: b"\x00\x01"}
    assert combined == ["ACC001", "ACC_2%X"]


def test_a_node_not_allowed_to_query_is_refused_and_audited(qr_listener):
    register("STOREONLY", allow_query=False)
    build_department()
    association = associate(qr_listener, ae_title="STOREONLY")
    try:
        responses = statuses_and_identifiers(
            association.send_c_find(identifier("STUDY", StudyInstanceUID=""), StudyRootFind))
    finally:
        association.release()
    assert responses == [(0x0124, None)]
    event = AuditEvent.objects.get(code=AuditEventCode.QUERY)
    assert (event.actor, event.outcome) == ("STOREONLY", AuditOutcome.SERIOUS_FAILURE)


def test_a_utf8_query_finds_a_non_ascii_name_and_answers_in_utf8(qr_listener):
    build_department()
    query = identifier("STUDY", PatientName="müller*", StudyInstanceUID="")
    query.SpecificCharacterSet = "ISO_IR 192"
    association = associate(qr_listener)
    try:
        responses = [found for status, found in association.send_c_find(query, StudyRootFind) if found]
    finally:
        association.release()
    [response] = responses
    assert response.SpecificCharacterSet == "ISO_IR 192"
    assert str(response.PatientName) == "Müller^Jürgen"


def test_an_unknown_level_is_refused_with_an_error_comment(qr_listener):
    association = associate(qr_listener)
    try:
        [(status, found)] = list(association.send_c_find(identifier("FRAME"), StudyRootFind))
    finally:
        association.release()
    assert (status.Status, status.ErrorComment, found) == (0xA900, "level FRAME not in the study root model", None)


def test_sequence_keys_are_returned_empty(qr_listener):
    build_department()
    query = identifier("STUDY", AccessionNumber="ACC001")
    query.ProcedureCodeSequence = [Dataset()]
    association = associate(qr_listener)
    try:
        [response] = [found for status, found in association.send_c_find(query, StudyRootFind) if found]
    finally:
        association.release()
    assert response.AccessionNumber == "ACC001"
    assert list(response.ProcedureCodeSequence) == []
