"""A sender that goes away in the middle of an instance leaves nothing behind: no index row, no partial file."""
import socket
from io import BytesIO
from itertools import islice

import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import CTImageStorage

from archive import status
from archive.models import Instance
from tests.archive.factories import make_dataset
from tests.archive.listener_peers import (
    associate, association_to, incoming_files, wait_for_associations_to_end,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


def start_storing(association, dataset, fragments):
    """Send a C-STORE request's command and the first `fragments` P-DATA fragments of its data set, then stop,
    like a sender that dies mid-instance."""
    context = association._get_valid_context(CTImageStorage, ExplicitVRLittleEndian, "scu")
    request = C_STORE()
    request.MessageID = 1
    request.AffectedSOPClassUID = dataset.SOPClassUID
    request.AffectedSOPInstanceUID = dataset.SOPInstanceUID
    request.Priority = 2
    request.DataSet = BytesIO(encode(dataset, False, True))
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    primitives = message.encode_msg(context.context_id, association.acceptor.maximum_length)
    for primitive in islice(primitives, 1 + fragments):
        association.dul.send_pdu(primitive)


def large_instance():
    """About 2 MB of pixel data: many P-DATA fragments."""
    return make_dataset(rows=1024, columns=1024)


def test_an_instance_aborted_mid_transfer_leaves_no_row_and_no_partial_file(listener, modality, storage_location):
    dataset = large_instance()
    association = associate(listener, [(CTImageStorage, [ExplicitVRLittleEndian])])
    start_storing(association, dataset, fragments=2)
    wait_until(lambda: incoming_files(storage_location))  # the listener is writing the instance
    association.abort()
    wait_for_associations_to_end(listener)
    assert incoming_files(storage_location) == []
    assert not Instance.objects.filter(sop_instance_uid=dataset.SOPInstanceUID).exists()


def test_an_instance_cut_off_by_a_dropped_connection_leaves_no_row_and_no_partial_file(
        listener, modality, storage_location):
    dataset = large_instance()
    association = associate(listener, [(CTImageStorage, [ExplicitVRLittleEndian])])
    start_storing(association, dataset, fragments=2)
    wait_until(lambda: incoming_files(storage_location))
    # No A-ABORT: the connection just goes away, as when a modality loses power.
    association.dul.socket.socket.shutdown(socket.SHUT_RDWR)
    association.kill()
    wait_for_associations_to_end(listener)
    assert incoming_files(storage_location) == []
    assert not Instance.objects.filter(sop_instance_uid=dataset.SOPInstanceUID).exists()


def test_the_same_instance_sent_again_after_an_abort_is_stored(listener, modality, storage_location):
    dataset = large_instance()
    association = associate(listener, [(CTImageStorage, [ExplicitVRLittleEndian])])
    start_storing(association, dataset, fragments=2)
    wait_until(lambda: incoming_files(storage_location))
    association.abort()
    wait_for_associations_to_end(listener)
    with association_to(listener, [(CTImageStorage, [ExplicitVRLittleEndian])]) as retry:
        assert retry.send_c_store(dataset).Status == status.SUCCESS
    assert Instance.objects.filter(sop_instance_uid=dataset.SOPInstanceUID).exists()
    assert incoming_files(storage_location) == []
