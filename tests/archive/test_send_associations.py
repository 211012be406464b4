"""How sends use associations: the presentation contexts proposed, the fallbacks, the 128-context limit, and
TCP_NODELAY on our socket."""
import socket

import pytest
from pydicom.uid import (
    CTImageStorage, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless,
    MRImageStorage, generate_uid,
)
from pynetdicom import AllStoragePresentationContexts, build_context

from archive import scu
from archive.choices import TransferStatus
from archive.ingest import ingest_file
from archive.models import Instance
from archive.tasks import run_transfer
from archive.transfers import request_send
from tests.archive.factories import copy_of_testdata, ingest_dataset, make_dataset
from tests.archive.remote_nodes import RecordingStoreSCP, StoreSCP, differing_elements, register_node

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def archive_folder(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")


@pytest.fixture
def recorder():
    scp = RecordingStoreSCP([CTImageStorage, MRImageStorage]).start()
    yield scp
    scp.stop()


def test_contexts_are_the_stored_syntaxes_with_a_little_endian_fallback_for_uncompressed_ones(recorder, tmp_path):
    study_uid = generate_uid()
    for number in (1, 2):
        ingest_dataset(make_dataset(study_uid=study_uid, instance_number=number))  # CT, explicit VR LE
    for name in ("MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_jp2klossless.dcm"):
        ingest_file(copy_of_testdata(name, tmp_path, study_uid=study_uid, patient_id="PAT001"))
    job = request_send(register_node(recorder.ae_title, recorder.port), study_uid)

    run_transfer.apply(args=[job.pk])

    assert len(recorder.proposed) == 1
    assert sorted(recorder.proposed[0]) == sorted([
        (CTImageStorage, (ExplicitVRLittleEndian, ImplicitVRLittleEndian)),
        (MRImageStorage, (ImplicitVRLittleEndian, ExplicitVRLittleEndian)),
        (MRImageStorage, (ExplicitVRBigEndian,)),
        (MRImageStorage, (JPEG2000Lossless,)),
    ])
    # The acceptor picks among the little endian ones; the others arrive exactly as stored.
    stored = {instance.sop_instance_uid: instance.transfer_syntax_uid for instance in Instance.objects.all()}
    assert set(recorder.received) == set(stored)
    for uid, syntax in stored.items():
        if syntax in (ExplicitVRBigEndian, JPEG2000Lossless):
            assert recorder.received[uid] == syntax
        else:
            assert recorder.received[uid] in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)


@pytest.mark.parametrize("preference, stored_as, arrives_as", [
    ("+xe", "MR_small_implicit.dcm", ExplicitVRLittleEndian),
    ("+xi", "MR_small.dcm", ImplicitVRLittleEndian),
])
def test_an_uncompressed_instance_is_converted_when_the_destination_takes_only_the_other_little_endian_syntax(
        tmp_path, preference, stored_as, arrives_as):
    scp = StoreSCP(tmp_path / "received", preference).start()
    try:
        result = ingest_file(copy_of_testdata(stored_as, tmp_path, patient_id="PAT001"))
        job = request_send(register_node(scp.ae_title, scp.port), result.instance.series.study.study_instance_uid)
        run_transfer.apply(args=[job.pk])
        received = scp.received()[result.sop_instance_uid]
    finally:
        scp.stop()

    job.refresh_from_db()
    assert job.status == TransferStatus.DONE
    assert received.file_meta.TransferSyntaxUID == arrives_as
    from archive.storage import archive_storage
    from pydicom import dcmread

    with archive_storage().open(result.instance.storage_key) as handle:
        assert differing_elements(received, dcmread(handle)) == []


def test_more_than_128_kinds_of_instance_go_in_several_associations():
    # PS3.8 9.3.2.2: at most 128 presentation contexts per association; 130 SOP classes need two.
    sop_classes = [str(context.abstract_syntax) for context in AllStoragePresentationContexts[:130]]
    recorder = RecordingStoreSCP(sop_classes).start()
    try:
        study_uid = generate_uid()
        for number, sop_class_uid in enumerate(sop_classes, start=1):
            ingest_dataset(make_dataset(study_uid=study_uid, sop_class_uid=sop_class_uid, instance_number=number))
        job = request_send(register_node(recorder.ae_title, recorder.port), study_uid)

        run_transfer.apply(args=[job.pk])
    finally:
        recorder.stop()

    job.refresh_from_db()
    assert (job.status, job.completed) == (TransferStatus.DONE, 130)
    assert [len(contexts) for contexts in recorder.proposed] == [128, 2]
    assert len(recorder.received) == 130


def test_our_association_socket_has_tcp_nodelay(recorder):
    node = register_node(recorder.ae_title, recorder.port)
    assoc = scu._associate(node, [build_context(CTImageStorage)])
    try:
        assert assoc.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        assoc.release()
