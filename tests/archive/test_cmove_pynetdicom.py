"""C-MOVE SCP statuses seen by a pynetdicom SCU: sub-operation counts, cancel, unknown or refusing destinations,
bad identifiers, failed sub-operations (PS3.4 C.4.2.1.5)."""
import pytest
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as StudyRootMove

from archive.ingest import ingest_file
from archive.models import Instance
from archive.storage import archive_storage
from radiology.choices import AuditEventCode, AuditOutcome
from radiology.models import AuditEvent
from tests.archive.factories import copy_of_testdata, ingest_dataset, make_dataset
from tests.archive.qr_network import ARCHIVE_AET, register, stored_dataset
from tests.archive.query_archive import build_department, identifier
from tests.archive.remote_nodes import StoreSCP

pytestmark = pytest.mark.django_db(transaction=True)

PENDING, CANCEL, SUCCESS, WARNING = 0xFF00, 0xFE00, 0x0000, 0xB000
MOVE_DESTINATION_UNKNOWN, IDENTIFIER_DOES_NOT_MATCH, NOT_AUTHORIZED = 0xA801, 0xA900, 0x0124


def move(qr_listener, query, destination="DEST", ae_title="PYSCU"):
    """Every (status dataset, identifier) response of one C-MOVE."""
    ae = AE(ae_title=ae_title)
    ae.add_requested_context(StudyRootMove)
    association = ae.associate("127.0.0.1", qr_listener.port, ae_title=ARCHIVE_AET)
    assert association.is_established
    try:
        return list(association.send_c_move(query, destination, StudyRootMove))
    finally:
        association.release()


def counts(status):
    return (status.get("NumberOfRemainingSuboperations"), status.NumberOfCompletedSuboperations,
            status.NumberOfFailedSuboperations, status.NumberOfWarningSuboperations)


def failed_uids(identifier):
    uids = identifier.FailedSOPInstanceUIDList
    return [uids] if isinstance(uids, str) else list(uids)


def test_pending_responses_count_down_the_sub_operations(qr_listener, destination):
    jane = build_department()["jane"]
    responses = move(qr_listener, identifier("STUDY", StudyInstanceUID=jane.study_uid))
    assert [status.Status for status, _ in responses] == [PENDING, PENDING, PENDING, SUCCESS]
    assert [counts(status) for status, _ in responses] == [
        (2, 1, 0, 0), (1, 2, 0, 0), (0, 3, 0, 0), (0, 3, 0, 0)]


def test_a_study_without_instances_here_moves_nothing_successfully(qr_listener, destination):
    responses = move(qr_listener, identifier("STUDY", StudyInstanceUID=generate_uid()))
    assert [(status.Status, counts(status)) for status, _ in responses] == [(SUCCESS, (None, 0, 0, 0))]
    assert destination.associations() == 0


def test_an_unknown_destination_gets_move_destination_unknown(qr_listener, destination):
    jane = build_department()["jane"]
    [(status, _)] = move(qr_listener, identifier("STUDY", StudyInstanceUID=jane.study_uid), destination="NOWHERE")
    assert status.Status == MOVE_DESTINATION_UNKNOWN
    event = AuditEvent.objects.get(code=AuditEventCode.BEGIN_TRANSFERRING)
    assert (event.outcome, event.detail["destination"]) == (AuditOutcome.MINOR_FAILURE, "NOWHERE")


def test_a_destination_that_refuses_the_association_gets_move_destination_unknown(qr_listener, tmp_path):
    refusing = StoreSCP(tmp_path / "refused", "--refuse", ae_title="REFUSER").start()
    try:
        register("REFUSER", port=refusing.port)
        jane = build_department()["jane"]
        [(status, _)] = move(qr_listener, identifier("STUDY", StudyInstanceUID=jane.study_uid), destination="REFUSER")
    finally:
        refusing.stop()
    assert status.Status == MOVE_DESTINATION_UNKNOWN


def test_a_cancelled_move_stops_with_a_cancel_status(qr_listener, destination):
    study_uid, series_uid = generate_uid(), generate_uid()
    for number in range(1, 41):
        assert ingest_dataset(make_dataset(study_uid=study_uid, series_uid=series_uid, instance_number=number)).ok
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(StudyRootMove)
    association = ae.associate("127.0.0.1", qr_listener.port, ae_title=ARCHIVE_AET)
    try:
        responses = association.send_c_move(identifier("STUDY", StudyInstanceUID=study_uid), "DEST", StudyRootMove,
                                             msg_id=9)
        first, _ = next(responses)
        assert first.Status == PENDING
        context_id = next(cx.context_id for cx in association.accepted_contexts
                          if cx.abstract_syntax == StudyRootMove)
        association.send_c_cancel(9, context_id)
        rest = [status for status, _ in responses]
    finally:
        association.release()
    final = rest[-1]
    assert final.Status == CANCEL
    assert final.NumberOfRemainingSuboperations > 0
    assert final.NumberOfCompletedSuboperations + final.NumberOfRemainingSuboperations == 40


@pytest.mark.parametrize(("query", "comment"), [
    (identifier("STUDY"), "StudyInstanceUID is required at STUDY level"),
    (identifier("STUDY", StudyInstanceUID="1.2.3", PatientName="Doe*"),
     "retrieve by unique keys only, not PatientName"),
    (identifier("SERIES", SeriesInstanceUID="1.2.3"), "StudyInstanceUID (one value) is required below STUDY level"),
])
def test_a_bad_identifier_is_refused_with_an_error_comment(qr_listener, destination, query, comment):
    build_department()
    responses = move(qr_listener, query)
    assert [(status.Status, status.ErrorComment) for status, _ in responses] == [
        (IDENTIFIER_DOES_NOT_MATCH, comment)]
    assert destination.received() == {}


def test_a_node_not_allowed_to_query_may_not_move(qr_listener, destination):
    register("STOREONLY", allow_query=False)
    jane = build_department()["jane"]
    responses = move(qr_listener, identifier("STUDY", StudyInstanceUID=jane.study_uid), ae_title="STOREONLY")
    assert [status.Status for status, _ in responses] == [NOT_AUTHORIZED]
    assert destination.received() == {}


def test_an_instance_whose_file_is_missing_fails_alone(qr_listener, destination):
    jane = build_department()["jane"]
    missing = Instance.objects.get(sop_instance_uid=jane.sop_uids[0])
    archive_storage().delete(missing.storage_key)
    responses = move(qr_listener, identifier("STUDY", StudyInstanceUID=jane.study_uid))
    final, failed = responses[-1]
    assert (final.Status, counts(final)) == (WARNING, (0, 2, 1, 0))
    assert failed_uids(failed) == [missing.sop_instance_uid]
    assert sorted(destination.received()) == sorted(jane.sop_uids[1:])


def test_compressed_instances_go_decompressed_to_a_destination_that_takes_only_uncompressed(qr_listener, tmp_path):
    # storescp without +xa accepts uncompressed transfer syntaxes only.
    plain = StoreSCP(tmp_path / "plain", ae_title="PLAIN").start()
    try:
        register("PLAIN", port=plain.port)
        study_uid = generate_uid()
        rle = ingest_file(copy_of_testdata("MR_small_RLE.dcm", tmp_path, study_uid=study_uid))
        assert rle.ok
        responses = move(qr_listener, identifier("STUDY", StudyInstanceUID=study_uid), destination="PLAIN")
        received = plain.received()
    finally:
        plain.stop()
    assert [status.Status for status, _ in responses][-1] == SUCCESS
    got = received[rle.sop_instance_uid]
    assert not got.file_meta.TransferSyntaxUID.is_compressed
    assert (got.pixel_array == stored_dataset(rle.sop_instance_uid).pixel_array).all()
