"""Ingest: one received DICOM file becomes a durable file plus index rows, or a clear refusal.

Every path in (C-STORE, STOW-RS, import_dicom) calls `ingest_file`. The order is the durability promise:
the file is fsynced and renamed into place, then the index rows commit, and only then does the caller
answer success.
"""
import hashlib
import logging
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from archive import status
from archive.choices import DuplicatePolicy, IngestEventKind
from archive.dicom_values import dicom_date, integer, text, to_date, valid_uid
from archive.models import IngestEvent, Instance, Series, Study
from archive.signals import instance_stored
from archive.storage import archive_storage, file_digest
from radiology.choices import Sex
from radiology.models import Patient

logger = logging.getLogger(__name__)

# Attributes bigger than this go into the header JSON as a BulkDataURI instead of inline (PS3.18 F.2.6).
BULK_DATA_THRESHOLD = 1024


@dataclass
class IngestResult:
    status: int
    outcome: str  # stored, duplicate, kept-first, replaced, rejected
    reason: str = ""
    sop_instance_uid: str = ""
    instance: Instance | None = None

    @property
    def ok(self):
        return self.status == status.SUCCESS or status.is_warning(self.status)


class Refused(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def ingest_file(path, *, calling_ae="", called_ae="", expected_sop_instance_uid=None):
    """Archive the DICOM Part 10 file at `path`. A file inside the archive's `.incoming/` folder is moved into
    place; any other file is copied. Returns an IngestResult whose `status` is the DICOM status to answer."""
    storage = archive_storage()
    path = Path(path)
    owned = path.parent.resolve() == storage.incoming.resolve()
    working_copy = path if owned else None
    try:
        dataset, header = _read_header(path)
        uids = _check_uids(dataset, expected_sop_instance_uid)
        if working_copy is None:
            working_copy = _copy_into_incoming(path, storage)
        size, sha256 = file_digest(working_copy)
        result = _archive(dataset, header, uids, working_copy, size, sha256, storage, calling_ae, called_ae)
        working_copy = None  # moved into the archive (or deliberately dropped by _archive)
        return result
    except Refused as refusal:
        logger.info("refused %s from %s: %s", path.name, calling_ae or "local", refusal.reason)
        return IngestResult(refusal.code, "rejected", refusal.reason)
    except OSError as exc:
        logger.error("storage failure for %s: %s", path.name, exc)
        return IngestResult(status.OUT_OF_RESOURCES, "rejected", f"storage failure: {exc.strerror or exc}")
    finally:
        if working_copy is not None and working_copy.exists() and (owned or working_copy != path):
            working_copy.unlink()


def _read_header(path):
    """The dataset (without pixel data) and its DICOM JSON. Converting every element to JSON here is also what
    finds a broken value or sequence, so that it is refused as undecodable before anything is written."""
    try:
        dataset = dcmread(path, stop_before_pixels=True)
        if "TransferSyntaxUID" not in dataset.file_meta:
            raise Refused(status.CANNOT_UNDERSTAND, "no transfer syntax in the file meta information")
        return dataset, _header_json(dataset)
    except FileNotFoundError as exc:
        raise Refused(status.OUT_OF_RESOURCES, f"cannot read {path.name}: {exc.strerror}") from None
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OverflowError, OSError,
            zlib.error) as exc:
        # pydicom reports a truncated element or sequence as OSError, a corrupt deflated stream as zlib.error.
        raise Refused(status.CANNOT_UNDERSTAND, f"not a decodable DICOM file: {exc}") from None


def _check_uids(dataset, expected_sop_instance_uid):
    uids = {}
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        try:
            value = str(dataset.get(keyword, "") or "").strip()
        except Exception:  # noqa: BLE001 - a value pydicom cannot even decode
            raise Refused(status.DATASET_MISMATCH, f"{keyword} cannot be decoded") from None
        if not value:
            raise Refused(status.DATASET_MISMATCH, f"{keyword} is missing")
        if not valid_uid(value):
            raise Refused(status.DATASET_MISMATCH, f"{keyword} is not a valid UID: {value[:80]!r}")
        uids[keyword] = value
    if expected_sop_instance_uid and uids["SOPInstanceUID"] != expected_sop_instance_uid:
        raise Refused(status.DATASET_MISMATCH, "SOP Instance UID differs from the one in the C-STORE request")
    return uids


def _copy_into_incoming(path, storage):
    with open(path, "rb") as source, storage.incoming_file() as target:
        shutil.copyfileobj(source, target, 1 << 20)
    return Path(target.name)


def _archive(dataset, header, uids, working_copy, size, sha256, storage, calling_ae, called_ae):
    sop_instance_uid = uids["SOPInstanceUID"]
    existing = _existing(Instance, sop_instance_uid=sop_instance_uid)
    if existing is not None:
        return _second_copy(existing, dataset, header, working_copy, size, sha256, storage, calling_ae)

    key = storage.key_for(sop_instance_uid, sha256)
    storage.store(working_copy, key)
    try:
        instance, created_study, created_series = _index(dataset, header, uids, key, size, sha256, calling_ae)
    except IntegrityError:
        # Another association indexed the same SOP Instance UID in between: treat ours as a second copy.
        existing = Instance.objects.get(sop_instance_uid=sop_instance_uid)
        if existing.storage_key != key:
            return _second_copy(existing, dataset, header, storage.path(key), size, sha256, storage, calling_ae)
        return IngestResult(status.SUCCESS, "duplicate", sop_instance_uid=sop_instance_uid, instance=existing)
    except Exception:
        _delete_unless_indexed(storage, key)
        raise
    transaction.on_commit(lambda: instance_stored.send(
        sender=Instance, instance=instance, created_study=created_study, created_series=created_series,
        calling_ae=calling_ae, called_ae=called_ae))
    return IngestResult(status.SUCCESS, "stored", sop_instance_uid=sop_instance_uid, instance=instance)


def _delete_unless_indexed(storage, key):
    """Remove the file whose index rows could not be written, unless an indexed instance uses that very file
    (an identical copy another association stored at the same moment). When the index cannot even be asked,
    keep it: an orphan file is found by an archive check, a deleted one is lost."""
    try:
        if Instance.objects.filter(storage_key=key).exists():
            return
    except Exception:  # noqa: BLE001 - the database failure is what the caller is about to report
        return
    storage.delete(key)


def _second_copy(existing, dataset, header, working_copy, size, sha256, storage, calling_ae):
    """The SOP Instance UID is known: identical bytes succeed quietly; different bytes follow the policy."""
    uid = existing.sop_instance_uid
    if existing.sha256 == sha256:
        working_copy.unlink(missing_ok=True)
        return IngestResult(status.SUCCESS, "duplicate", sop_instance_uid=uid, instance=existing)

    policy = settings.ARCHIVE_DUPLICATE_POLICY
    IngestEvent.objects.create(
        kind=IngestEventKind.DUPLICATE_DIFFERENT_CONTENT, sop_instance_uid=uid,
        study_instance_uid=existing.series.study.study_instance_uid, patient=existing.series.study.patient,
        source=calling_ae, detail={"stored_sha256": existing.sha256, "received_sha256": sha256,
                                   "received_size": size, "policy": policy})
    if policy == DuplicatePolicy.REPLACE:
        old_key = existing.storage_key
        new_key = storage.key_for(uid, sha256)
        storage.store(working_copy, new_key)
        Instance.objects.filter(pk=existing.pk).update(
            storage_key=new_key, sha256=sha256, file_size=size, header=header,
            transfer_syntax_uid=str(dataset.file_meta.TransferSyntaxUID))
        transaction.on_commit(lambda: storage.delete(old_key))
        return IngestResult(status.SUCCESS, "replaced", sop_instance_uid=uid, instance=existing)
    working_copy.unlink(missing_ok=True)
    if policy == DuplicatePolicy.REJECT:
        return IngestResult(status.DUPLICATE_SOP_INSTANCE, "rejected",
                            "an instance with this SOP Instance UID and different content is already stored", uid)
    return IngestResult(status.ELEMENTS_DISCARDED, "kept-first",
                        "an instance with this SOP Instance UID is already stored; the new copy was discarded",
                        uid, existing)


# Two associations may create the same patient, study or series at once (PostgreSQL runs them concurrently);
# the loser's transaction fails on the unique constraint and is simply run again, finding the rows in place.
INDEX_ATTEMPTS = 3


def _index(dataset, header, uids, key, size, sha256, calling_ae):
    """Index rows for one stored file. Raises IntegrityError only when the SOP instance itself was indexed
    by someone else meanwhile."""
    for attempt in range(1, INDEX_ATTEMPTS + 1):
        try:
            return _index_once(dataset, header, uids, key, size, sha256, calling_ae)
        except IntegrityError:
            if attempt == INDEX_ATTEMPTS or Instance.objects.filter(
                    sop_instance_uid=uids["SOPInstanceUID"]).exists():
                raise


def _index_once(dataset, header, uids, key, size, sha256, calling_ae):
    modality = text(dataset, "Modality", 16)
    with transaction.atomic():
        # A new study or series is created with its counters already counting this instance: two UPDATEs
        # fewer on the common path of a new study.
        study, created_study = _study_for(
            dataset, uids["StudyInstanceUID"], calling_ae,
            counters={"number_of_series": 1, "number_of_instances": 1, "size_bytes": size,
                      "modalities_in_study": modality})
        series = _existing(Series, series_instance_uid=uids["SeriesInstanceUID"])
        created_series = series is None
        if created_series:
            series = Series.objects.create(
                series_instance_uid=uids["SeriesInstanceUID"], study=study, modality=modality,
                series_number=integer(dataset, "SeriesNumber"),
                series_description=text(dataset, "SeriesDescription"),
                body_part_examined=text(dataset, "BodyPartExamined", 16),
                series_date=dicom_date(dataset, "SeriesDate"),
                series_time=text(dataset, "SeriesTime", 16),
                number_of_instances=1)
        instance = Instance.objects.create(
            sop_instance_uid=uids["SOPInstanceUID"], series=series, sop_class_uid=uids["SOPClassUID"],
            instance_number=integer(dataset, "InstanceNumber"),
            transfer_syntax_uid=str(dataset.file_meta.TransferSyntaxUID),
            rows=integer(dataset, "Rows"), columns=integer(dataset, "Columns"),
            number_of_frames=integer(dataset, "NumberOfFrames") or (1 if "Rows" in dataset else None),
            storage_key=key, file_size=size, sha256=sha256, header=header,
            received_from=calling_ae[:64])
        if not created_series:
            Series.objects.filter(pk=series.pk).update(number_of_instances=F("number_of_instances") + 1)
        if not created_study:
            study_changes = {"number_of_instances": F("number_of_instances") + 1,
                             "size_bytes": F("size_bytes") + size}
            if created_series:
                study_changes["number_of_series"] = F("number_of_series") + 1
                modalities = set(filter(None, study.modalities_in_study.split("\\")))
                if modality and modality not in modalities:
                    study_changes["modalities_in_study"] = "\\".join(sorted(modalities | {modality}))
            Study.objects.filter(pk=study.pk).update(**study_changes)
    return instance, created_study, created_series


def _existing(model, **unique_key):
    """The row with this unique key, or None (a plain lookup: no ordering, no savepoint)."""
    try:
        return model.objects.get(**unique_key)
    except model.DoesNotExist:
        return None


def _study_for(dataset, study_instance_uid, calling_ae, counters):
    """The study (found, or created with `counters` as its initial counts) and whether it was created."""
    study = _existing(Study, study_instance_uid=study_instance_uid)
    if study is not None:
        return study, False
    patient = _patient_for(dataset, study_instance_uid, calling_ae)
    study = Study.objects.create(
        study_instance_uid=study_instance_uid, patient=patient,
        patient_name=text(dataset, "PatientName", 324),
        dicom_patient_id=text(dataset, "PatientID"),
        issuer_of_patient_id=text(dataset, "IssuerOfPatientID"),
        patient_birth_date=dicom_date(dataset, "PatientBirthDate"),
        patient_sex=text(dataset, "PatientSex", 16),
        study_date=dicom_date(dataset, "StudyDate"),
        study_time=text(dataset, "StudyTime", 16),
        study_id=text(dataset, "StudyID", 16),
        accession_number=text(dataset, "AccessionNumber"),
        referring_physician_name=text(dataset, "ReferringPhysicianName", 324),
        study_description=text(dataset, "StudyDescription"),
        **counters)
    return study, True


def _patient_for(dataset, study_instance_uid, calling_ae):
    """The Patient for this dataset, found by Patient ID and issuer or created from the demographics.
    Demographics that differ from a stored patient are recorded as a conflict, not written over it."""
    family, _, given = text(dataset, "PatientName", 324).partition("^")
    given = given.split("^")[0]
    received = {
        "family_name": family.strip()[:100],
        "given_name": given.strip()[:100],
        "birth_date": to_date(dicom_date(dataset, "PatientBirthDate")),
        "sex": text(dataset, "PatientSex", 1).upper() if text(dataset, "PatientSex", 1).upper() in Sex.values
        else Sex.UNKNOWN,
    }
    mrn = text(dataset, "PatientID")
    issuer = text(dataset, "IssuerOfPatientID")
    if not mrn:
        # No Patient ID: one record per name and birth date, under an ID that says where it came from.
        fingerprint = f"{received['family_name']}^{received['given_name']}|{received['birth_date']}"
        mrn = "NOID-" + hashlib.sha256(fingerprint.upper().encode()).hexdigest()[:12].upper()
    patient = _existing(Patient, mrn=mrn, issuer=issuer)
    if patient is None:
        return Patient.objects.create(mrn=mrn, issuer=issuer, **received)
    differences = {
        field: {"stored": str(getattr(patient, field) or ""), "received": str(value or "")}
        for field, value in received.items()
        if value and value != Sex.UNKNOWN and str(value).upper() != str(getattr(patient, field) or "").upper()
    }
    if differences:
        IngestEvent.objects.create(
            kind=IngestEventKind.DEMOGRAPHICS_CONFLICT, study_instance_uid=study_instance_uid, patient=patient,
            source=calling_ae, detail=differences)
    return patient


def _header_json(dataset):
    """The header (pixel data already left out) as DICOM JSON; large values become BulkDataURIs naming the
    tag, which the DICOMweb layer turns into full URLs."""
    return dataset.to_json_dict(
        bulk_data_threshold=BULK_DATA_THRESHOLD,
        bulk_data_element_handler=lambda element: f"bulkdata/{element.tag:08X}",
        suppress_invalid_tags=True)
