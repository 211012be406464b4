"""Storage Commitment Push Model SCP (PS3.4 J.3): an N-ACTION naming instances is answered, then an
N-EVENT-REPORT says which of them the archive holds intact and why the others failed."""
import queue

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.presentation import build_role
from pynetdicom.sop_class import CTImageStorage, StorageCommitmentPushModel

from archive import commitment, status
from archive.commitment import Reference, check_commitment
from archive.models import Instance
from archive.storage import archive_storage
from tests.archive.factories import ingest_dataset, make_dataset
from tests.archive.listener_peers import (
    association_to, register_node,
)
from tests.platform_process import free_port

pytestmark = pytest.mark.django_db(transaction=True)

STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
REPORT_TIMEOUT = 15
# What a requester proposes to receive the result on its own association.
BOTH_ROLES = build_role(StorageCommitmentPushModel, scu_role=True, scp_role=True)


class ReportReceiver:
    """Collects N-EVENT-REPORTs as (event type, transaction UID, committed, failed) and answers success."""

    def __init__(self):
        self.reports = queue.Queue()

    def __call__(self, event):
        information = event.event_information
        committed = [item.ReferencedSOPInstanceUID for item in information.get("ReferencedSOPSequence", [])]
        failed = {item.ReferencedSOPInstanceUID: item.FailureReason
                  for item in information.get("FailedSOPSequence", [])}
        self.reports.put((event.event_type, information.TransactionUID, committed, failed,
                          information.get("RetrieveAETitle")))
        return status.SUCCESS, None

    def next_report(self):
        return self.reports.get(timeout=REPORT_TIMEOUT)


def commitment_request(transaction_uid, *datasets, sop_class_uid=CTImageStorage):
    request = Dataset()
    request.TransactionUID = transaction_uid
    items = []
    for dataset in datasets:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class_uid
        item.ReferencedSOPInstanceUID = dataset.SOPInstanceUID
        items.append(item)
    request.ReferencedSOPSequence = items
    return request


def request_commitment(association, request):
    answer, _ = association.send_n_action(request, 1, StorageCommitmentPushModel, STORAGE_COMMITMENT_INSTANCE)
    return answer.Status


def test_the_result_lists_stored_instances_as_committed_and_unknown_ones_as_failed(listener):
    register_node("MODALITY1")
    receiver = ReportReceiver()
    stored, unknown = make_dataset(), make_dataset()
    transaction_uid = generate_uid()
    with association_to(listener, [CTImageStorage, StorageCommitmentPushModel], ext_neg=[BOTH_ROLES],
                        evt_handlers=[(evt.EVT_N_EVENT_REPORT, receiver)]) as association:
        assert association.send_c_store(stored).Status == status.SUCCESS
        assert request_commitment(association, commitment_request(transaction_uid, stored, unknown)) == 0x0000
        event_type, reported_transaction, committed, failed, retrieve_ae = receiver.next_report()
    assert (event_type, reported_transaction) == (2, transaction_uid)  # 2: failures exist (PS3.4 J.3.3.1.1)
    assert committed == [stored.SOPInstanceUID]
    assert failed == {unknown.SOPInstanceUID: commitment.NO_SUCH_OBJECT_INSTANCE}
    assert retrieve_ae == "RADIOLOGY"


def test_all_instances_held_give_event_type_1_without_a_failed_sequence(listener):
    register_node("MODALITY1")
    receiver = ReportReceiver()
    first, second = make_dataset(), make_dataset()
    with association_to(listener, [CTImageStorage, StorageCommitmentPushModel], ext_neg=[BOTH_ROLES],
                        evt_handlers=[(evt.EVT_N_EVENT_REPORT, receiver)]) as association:
        for dataset in (first, second):
            association.send_c_store(dataset)
        request_commitment(association, commitment_request(generate_uid(), first, second))
        event_type, _, committed, failed, _ = receiver.next_report()
    assert event_type == 1
    assert sorted(committed) == sorted([first.SOPInstanceUID, second.SOPInstanceUID])
    assert failed == {}


@pytest.fixture
def modality_scp():
    """The modality's own listener, where a result comes when the requesting association is gone."""
    receiver = ReportReceiver()
    ae = AE(ae_title="MODALITY1")
    # It accepts the SCP role the archive proposes when it opens the association (PS3.4 J.3.3.1.3).
    ae.add_supported_context(StorageCommitmentPushModel, scu_role=False, scp_role=True)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_N_EVENT_REPORT, receiver)])
    receiver.port = port
    yield receiver
    server.shutdown()


def test_a_requester_that_released_gets_the_result_on_a_new_association_to_its_node(listener, modality_scp):
    register_node("MODALITY1", port=modality_scp.port)
    stored = ingest_dataset(make_dataset()).instance
    transaction_uid = generate_uid()
    request = Dataset()
    request.TransactionUID = transaction_uid
    item = Dataset()
    item.ReferencedSOPClassUID = stored.sop_class_uid
    item.ReferencedSOPInstanceUID = stored.sop_instance_uid
    request.ReferencedSOPSequence = [item]
    with association_to(listener, [StorageCommitmentPushModel]) as association:
        assert request_commitment(association, request) == 0x0000
    event_type, reported_transaction, committed, failed, _ = modality_scp.next_report()
    assert (event_type, reported_transaction, committed, failed) == (1, transaction_uid, [stored.sop_instance_uid],
                                                                     {})


def test_a_commitment_request_without_transaction_uid_is_refused(listener):
    register_node("MODALITY1")
    request = commitment_request("", make_dataset())
    with association_to(listener, [StorageCommitmentPushModel]) as association:
        answer, _ = association.send_n_action(request, 1, StorageCommitmentPushModel, STORAGE_COMMITMENT_INSTANCE)
    assert answer.Status == 0x0115  # invalid argument value
    assert "Transaction UID" in answer.ErrorComment


def test_an_unknown_action_type_is_refused(listener):
    register_node("MODALITY1")
    with association_to(listener, [StorageCommitmentPushModel]) as association:
        answer, _ = association.send_n_action(commitment_request(generate_uid(), make_dataset()), 2,
                                              StorageCommitmentPushModel, STORAGE_COMMITMENT_INSTANCE)
    assert answer.Status == 0x0123  # no such action


def test_a_node_not_allowed_to_store_may_not_ask_for_commitment(listener):
    register_node("VIEWER", allow_store=False)
    with association_to(listener, [StorageCommitmentPushModel], calling_ae="VIEWER") as association:
        status_code = request_commitment(association, commitment_request(generate_uid(), make_dataset()))
    assert status_code == 0x0124


# The checks behind the result, without the network.

@pytest.fixture
def archive_folder(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")


def test_a_file_changed_on_disk_is_not_committed(archive_folder):
    instance = ingest_dataset(make_dataset()).instance
    path = archive_storage().path(instance.storage_key)
    path.write_bytes(path.read_bytes()[:-2] + b"\x00\x01")
    result = check_commitment([Reference(instance.sop_class_uid, instance.sop_instance_uid)])
    assert result.failed == [(Reference(instance.sop_class_uid, instance.sop_instance_uid),
                              commitment.PROCESSING_FAILURE)]


def test_a_missing_file_is_not_committed(archive_folder):
    instance = ingest_dataset(make_dataset()).instance
    archive_storage().path(instance.storage_key).unlink()
    result = check_commitment([Reference(instance.sop_class_uid, instance.sop_instance_uid)])
    assert [reason for _, reason in result.failed] == [commitment.PROCESSING_FAILURE]


def test_an_instance_referenced_under_another_sop_class_is_not_committed(archive_folder):
    instance = ingest_dataset(make_dataset()).instance
    result = check_commitment([Reference("1.2.840.10008.5.1.4.1.1.4", instance.sop_instance_uid)])
    assert [reason for _, reason in result.failed] == [commitment.CLASS_INSTANCE_CONFLICT]
    assert Instance.objects.filter(pk=instance.pk).exists()
