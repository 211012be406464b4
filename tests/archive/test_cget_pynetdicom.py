"""C-GET SCP with a pynetdicom SCU that offers storage contexts in the SCP role: compressed instances come back
in their stored transfer syntax when the SCU offers it; without a storage context a sub-operation fails."""
import tempfile
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as StudyRootGet

from archive.ingest import ingest_file
from tests.archive.factories import COMPRESSED_TESTDATA, copy_of_testdata
from tests.archive.qr_network import ARCHIVE_AET, stored_dataset
from tests.archive.query_archive import build_department, identifier
from tests.archive.remote_nodes import differing_elements

pytestmark = pytest.mark.django_db(transaction=True)

PENDING, SUCCESS, ALL_SUB_OPERATIONS_FAILED = 0xFF00, 0x0000, 0xA702


def get(qr_listener, query, storage_contexts):
    """C-GET `query`, offering (SOP class, transfer syntax) storage contexts in the SCP role. Returns the
    responses and {SOP Instance UID: dataset as received, with the transfer syntax it came in}."""
    received = {}

    def store(event):
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        received[str(dataset.SOPInstanceUID)] = dataset
        return SUCCESS

    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(StudyRootGet)
    for sop_class, transfer_syntax in storage_contexts:
        ae.add_requested_context(sop_class, transfer_syntax)
    roles = [build_role(sop_class, scp_role=True) for sop_class in dict.fromkeys(c for c, _ in storage_contexts)]
    association = ae.associate("127.0.0.1", qr_listener.port, ae_title=ARCHIVE_AET, ext_neg=roles,
                               evt_handlers=[(evt.EVT_C_STORE, store)])
    assert association.is_established
    try:
        responses = list(association.send_c_get(query, StudyRootGet))
    finally:
        association.release()
    return responses, received


def test_compressed_instances_come_back_in_their_stored_transfer_syntax(qr_listener):
    study_uid = generate_uid()
    ingested = []
    with tempfile.TemporaryDirectory() as folder:
        for name in COMPRESSED_TESTDATA:
            result = ingest_file(copy_of_testdata(name, Path(folder), study_uid=study_uid), calling_ae="TEST")
            assert result.ok, (name, result.reason)
            ingested.append(result.sop_instance_uid)
    stored = {uid: stored_dataset(uid) for uid in ingested}
    contexts = sorted({(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in stored.values()})
    responses, received = get(qr_listener, identifier("STUDY", StudyInstanceUID=study_uid), contexts)
    assert responses[-1][0].Status == SUCCESS
    assert sorted(received) == sorted(ingested)
    for uid, dataset in received.items():
        assert dataset.file_meta.TransferSyntaxUID == stored[uid].file_meta.TransferSyntaxUID, uid
        assert differing_elements(dataset, stored[uid]) == [], uid


def test_without_a_storage_context_every_sub_operation_fails(qr_listener):
    jane = build_department()["jane"]
    responses, received = get(qr_listener, identifier("STUDY", StudyInstanceUID=jane.study_uid), [])
    final, failed = responses[-1]
    assert (final.Status, final.NumberOfFailedSuboperations, final.NumberOfCompletedSuboperations) == (
        ALL_SUB_OPERATIONS_FAILED, 3, 0)
    assert sorted(failed.FailedSOPInstanceUIDList) == sorted(jane.sop_uids)
    assert received == {}


def test_a_bad_get_identifier_is_refused_with_an_error_comment(qr_listener):
    responses, received = get(qr_listener, identifier("IMAGE", SOPInstanceUID="1.2.3"), [])
    final, _ = responses[-1]
    assert (final.Status, final.ErrorComment) == (0xA900, "StudyInstanceUID (one value) is required below STUDY level")
