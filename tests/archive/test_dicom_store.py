"""C-STORE to the archive's listener (PS3.4 B.2.3): what arrives is archived as it arrived, compressed or not;
bad instances get a failure status while the association goes on and loses nothing stored before."""
import errno
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.uid import JPEGLossless, generate_uid
from pynetdicom import _config
from pynetdicom.sop_class import CTImageStorage, MRImageStorage, SecondaryCaptureImageStorage

from archive import status
from archive.dimse.listener import NOT_AUTHORIZED
from archive.models import Instance
from archive.storage import FilesystemStorage, archive_storage
from radiology.choices import AuditEventCode, AuditOutcome
from radiology.models import AuditEvent
from tests.archive.factories import COMPRESSED_TESTDATA, UNCOMPRESSED_TESTDATA, copy_of_testdata, make_dataset
from tests.archive.listener_peers import (
    archived_files, association_to, dcmtk, incoming_files, register_node, wait_for_associations_to_end,
)

pytestmark = pytest.mark.django_db(transaction=True)

# Beyond the factories' lists: JPEG lossless SV1, a second RLE and a second JPEG extended file.
MORE_TESTDATA = ["SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle.dcm", "JPEG-lossy.dcm"]
SENT_TESTDATA = COMPRESSED_TESTDATA + UNCOMPRESSED_TESTDATA + MORE_TESTDATA


@pytest.fixture
def sent_folder(tmp_path):
    """pydicom's bundled files in every transfer syntax the archive accepts, with fresh UIDs, plus one JPEG
    process 14 file (the SV1 bitstream relabelled: selection value 1 is a valid process 14 stream)."""
    folder = tmp_path / "sent"
    folder.mkdir()
    for name in SENT_TESTDATA:
        copy_of_testdata(name, folder)
    process_14 = dcmread(copy_of_testdata("SC_rgb_jpeg_gdcm.dcm", tmp_path))
    process_14.file_meta.TransferSyntaxUID = JPEGLossless
    process_14.SOPInstanceUID = process_14.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    process_14.save_as(folder / "SC_rgb_jpeg_process14.dcm", enforce_file_format=True)
    return folder


def storescu_profile(folder, path):
    """A storescu configuration proposing one presentation context per (SOP Class, transfer syntax) of the
    files, so storescu sends each file in its own transfer syntax instead of converting it."""
    pairs = []
    for file in sorted(folder.iterdir()):
        dataset = dcmread(file, stop_before_pixels=True)
        pair = (dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
        if pair not in pairs:
            pairs.append(pair)
    syntaxes = sorted({syntax for _, syntax in pairs})
    lines = ["[[TransferSyntaxes]]"]
    for number, syntax in enumerate(syntaxes):
        lines += [f"[TS{number}]", f"TransferSyntax1 = {syntax}"]
    lines += ["[[PresentationContexts]]", "[Files]"]
    lines += [f"PresentationContext{number} = {sop_class}\\TS{syntaxes.index(syntax)}"
              for number, (sop_class, syntax) in enumerate(pairs, start=1)]
    lines += ["[[Profiles]]", "[Archive]", "PresentationContexts = Files"]
    path.write_text("\n".join(lines) + "\n")
    return path


def data_set_bytes(path):
    """The bytes of a Part 10 file after its file meta information (PS3.10 7.1)."""
    raw = Path(path).read_bytes()
    assert raw[128:132] == b"DICM"
    group_length = int.from_bytes(raw[140:144], "little")
    return raw[144 + group_length:]


def stored_path(sop_instance_uid):
    return archive_storage().path(Instance.objects.get(sop_instance_uid=sop_instance_uid).storage_key)


def contexts_for(*files):
    """One presentation context per (SOP Class, transfer syntax) of the files: the acceptor picks one transfer
    syntax per context."""
    pairs = []
    for file in files:
        dataset = dcmread(file, stop_before_pixels=True)
        pair = (dataset.SOPClassUID, [dataset.file_meta.TransferSyntaxUID])
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def test_storescu_sends_a_folder_of_compressed_and_uncompressed_instances_each_archived_as_sent(
        listener, modality, sent_folder, tmp_path):
    profile = storescu_profile(sent_folder, tmp_path / "storescu.cfg")
    result = dcmtk("storescu", "-aet", "MODALITY1", "-aec", "RADIOLOGY", "-xf", str(profile), "Archive",
                   "+sd", "+r", "127.0.0.1", str(listener.port), str(sent_folder))
    wait_for_associations_to_end(listener)
    sent = sorted(sent_folder.iterdir())
    # storescu exits 0 even when single C-STOREs fail: count the success responses (DESIGN.md section 6).
    assert result.stderr.count("Received Store Response (Success)") == len(sent), result.stderr
    assert "Converting transfer syntax: Little Endian Explicit -> Little Endian Implicit" not in result.stderr
    for file in sent:
        original = dcmread(file)
        stored = dcmread(stored_path(original.SOPInstanceUID))
        assert stored.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID, file.name
        assert stored.PixelData == original.PixelData, file.name
        # storescu re-encodes what it reads: it drops trailing padding and writes encapsulated pixel data as OB.
        for element in original:
            if element.keyword not in ("DataSetTrailingPadding", "PixelData"):
                assert stored[element.tag] == element, f"{file.name} {element.keyword}"


def test_instances_are_archived_byte_for_byte_in_every_transfer_syntax(listener, modality, sent_folder,
                                                                        monkeypatch):
    # pynetdicom sends a file's data set bytes unchanged when it sends from the file in chunks.
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    files = sorted(sent_folder.iterdir())
    with association_to(listener, contexts_for(*files)) as association:
        answers = [association.send_c_store(file).Status for file in files]
    assert answers == [status.SUCCESS] * len(files)
    for file in files:
        sop_instance_uid = dcmread(file, stop_before_pixels=True).SOPInstanceUID
        assert data_set_bytes(stored_path(sop_instance_uid)) == data_set_bytes(file), file.name


def send_datasets(listener, *datasets, sop_class=CTImageStorage):
    with association_to(listener, [sop_class]) as association:
        return [association.send_c_store(dataset) for dataset in datasets]


def test_a_data_set_without_its_uids_is_refused_and_the_association_goes_on(listener, modality, storage_location):
    before, after = make_dataset(), make_dataset()
    broken = make_dataset()
    del broken.SeriesInstanceUID
    answers = send_datasets(listener, before, broken, after)
    assert [answer.Status for answer in answers] == [status.SUCCESS, status.DATASET_MISMATCH, status.SUCCESS]
    assert "SeriesInstanceUID is missing" in answers[1].ErrorComment
    assert set(Instance.objects.values_list("sop_instance_uid", flat=True)) == {
        before.SOPInstanceUID, after.SOPInstanceUID}
    assert incoming_files(storage_location) == []


def test_an_invalid_uid_is_refused_with_nothing_written(listener, modality, storage_location):
    files_before = set(archived_files(storage_location))
    invalid = make_dataset(study_uid="1.2.03.4")  # PS3.5 9.1: no leading zero in a component
    [answer] = send_datasets(listener, invalid)
    assert answer.Status == status.DATASET_MISMATCH
    assert "StudyInstanceUID is not a valid UID" in answer.ErrorComment
    assert not Instance.objects.exists()
    assert set(archived_files(storage_location)) == files_before
    assert incoming_files(storage_location) == []


def write_raw_part10(path, *, sop_instance_uid, data_set):
    """A Part 10 file whose data set is exactly `data_set` (bytes), with valid file meta information."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    template = make_dataset()
    template.file_meta = meta
    template.save_as(path, enforce_file_format=True)
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) - len(data_set_bytes(path))] + data_set)
    return path


def test_a_sop_instance_uid_differing_from_the_request_is_refused(listener, modality, tmp_path, monkeypatch):
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    dataset = make_dataset()
    file = tmp_path / "mismatch.dcm"
    dataset.save_as(file, enforce_file_format=True)
    raw_data_set = data_set_bytes(file)
    announced = generate_uid()
    write_raw_part10(file, sop_instance_uid=announced, data_set=raw_data_set)
    with association_to(listener, [CTImageStorage]) as association:
        answer = association.send_c_store(file)
    assert answer.Status == status.DATASET_MISMATCH
    assert "differs from the one in the C-STORE request" in answer.ErrorComment
    assert not Instance.objects.exists()


def test_an_undecodable_data_set_is_refused_and_the_association_goes_on(listener, modality, tmp_path,
                                                                        monkeypatch, storage_location):
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    garbage = write_raw_part10(tmp_path / "garbage.dcm", sop_instance_uid=generate_uid(),
                               data_set=b"this is not a DICOM data set, only text")
    good = tmp_path / "good.dcm"
    make_dataset().save_as(good, enforce_file_format=True)
    with association_to(listener, [CTImageStorage]) as association:
        answers = [association.send_c_store(garbage).Status, association.send_c_store(good).Status]
    # PS3.4 B.2.3: "cannot understand" or "data set does not match SOP Class"; ingest says which.
    assert answers[0] in (status.CANNOT_UNDERSTAND, status.DATASET_MISMATCH)
    assert answers[1] == status.SUCCESS
    assert Instance.objects.count() == 1
    assert incoming_files(storage_location) == []


def test_a_full_disk_is_answered_out_of_resources_with_nothing_half_written(listener, modality, monkeypatch,
                                                                           storage_location):
    files_before = set(archived_files(storage_location))

    def disk_full(self, source_path, key):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FilesystemStorage, "store", disk_full)
    [answer] = send_datasets(listener, make_dataset())
    assert answer.Status == status.OUT_OF_RESOURCES
    assert "No space left on device" in answer.ErrorComment
    assert not Instance.objects.exists()
    assert set(archived_files(storage_location)) == files_before
    assert incoming_files(storage_location) == []


def test_an_unexpected_error_is_answered_out_of_resources_and_the_next_instance_is_stored(listener, modality,
                                                                                        monkeypatch):
    from archive.dimse import storage as dimse_storage

    real_ingest = dimse_storage.ingest_file
    calls = []

    def fails_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("index unavailable")
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(dimse_storage, "ingest_file", fails_once)
    first, second = make_dataset(), make_dataset()
    answers = send_datasets(listener, first, second)
    assert [answer.Status for answer in answers] == [status.OUT_OF_RESOURCES, status.SUCCESS]
    assert list(Instance.objects.values_list("sop_instance_uid", flat=True)) == [second.SOPInstanceUID]


def test_a_node_not_allowed_to_store_is_refused_per_request(listener):
    register_node("VIEWER", allow_store=False)
    with association_to(listener, [CTImageStorage], calling_ae="VIEWER") as association:
        answer = association.send_c_store(make_dataset())
    assert answer.Status == NOT_AUTHORIZED
    assert not Instance.objects.exists()


def test_each_association_that_stored_leaves_one_transfer_event_with_counts_and_study_uids(listener, modality):
    study_a, study_b = generate_uid(), generate_uid()
    refused = make_dataset()
    del refused.StudyInstanceUID
    send_datasets(listener, make_dataset(study_uid=study_a), make_dataset(study_uid=study_a),
                  make_dataset(study_uid=study_b), refused)
    [event] = AuditEvent.objects.filter(code=AuditEventCode.DICOM_INSTANCES_TRANSFERRED)
    assert (event.actor, event.action, event.outcome) == ("MODALITY1", "C", AuditOutcome.MINOR_FAILURE)
    assert sorted(event.detail["study_instance_uids"]) == sorted([study_a, study_b])
    assert event.detail["instances"] == {"stored": 3, "rejected": 1}
    assert event.patient is not None  # every instance came from one patient


def test_instances_of_other_storage_classes_are_accepted(listener, modality):
    answers = send_datasets(listener, make_dataset(sop_class_uid=MRImageStorage, modality="MR"),
                            sop_class=MRImageStorage)
    assert [answer.Status for answer in answers] == [status.SUCCESS]
    answers = send_datasets(listener, make_dataset(sop_class_uid=SecondaryCaptureImageStorage, modality="OT"),
                            sop_class=SecondaryCaptureImageStorage)
    assert [answer.Status for answer in answers] == [status.SUCCESS]
