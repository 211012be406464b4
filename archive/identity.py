"""Correcting who an archived study belongs to: its patient and accession number, in the index and in every
stored file alike.

A study that arrived with a mistyped Patient ID or no accession number is made to belong to the right patient
and order (the worklist's exceptions list does this when a technologist links it). Every instance's header is
rewritten with the new Patient ID, Issuer of Patient ID, Patient's Name, Birth Date, Sex and Accession Number;
the pixel data is copied byte for byte after the new header, so compressed images stay as they were.

The order follows ingest's durability promise: each new file is written aside in `.incoming/`, fsynced and
renamed under a key made from its new SHA-256 (old and new versions never share a key); then one transaction
points the index at the new files and updates the study; the old files are deleted only after that commits.
A failure at any point before the commit removes the new files again and leaves the old files and the index as
they were.
"""
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from pydicom import dcmread
from pydicom.charset import convert_encodings
from pydicom.uid import DeflatedExplicitVRLittleEndian

from archive.ingest import _header_json
from archive.models import Instance, Study
from archive.rendering import THUMBNAIL_FOLDER
from archive.storage import archive_storage, file_digest
from radiology.audit import record_audit_event
from radiology.choices import AuditEventCode, Sex

logger = logging.getLogger(__name__)

# The patient-level attributes of the study (PS3.3 C.7.1.1) and the accession number, as the index names them.
PATIENT_FIELDS = ("dicom_patient_id", "issuer_of_patient_id", "patient_name", "patient_birth_date", "patient_sex")
COPY_CHUNK = 1 << 20


class IdentityCorrectionError(Exception):
    """The correction could not be made; nothing was changed. The message says why."""


@dataclass
class _NewFile:
    instance: Instance
    key: str
    size: int
    sha256: str
    header: dict = field(default_factory=dict)

    @property
    def unchanged(self):
        return self.key == self.instance.storage_key


def correct_study_identity(study, *, patient, accession_number, user, channel, then=None):
    """Make `study` the images of `patient` with `accession_number`, in the index and in every stored file.

    `then`, when given, is called with the updated study inside the same transaction as the index update:
    whatever must commit or fail together with the correction (linking the study to its order) goes there.
    Returns the updated study. Raises IdentityCorrectionError (or whatever `then` raises) with nothing changed.

    Call it outside a transaction: inside one, a rollback after it returns leaves the new files unused beside
    the old ones, which stay in use (an orphan file is found by an archive check; a deleted one would be lost)."""
    values = identity_values(patient, accession_number)
    storage = archive_storage()
    instances = list(Instance.objects.filter(series__study=study).order_by("pk"))
    new_files = []
    try:
        for instance in instances:
            new_files.append(_rewrite(instance, values, storage))
        with transaction.atomic():
            study = _update_index(study, new_files, patient, values, user, channel)
            if then is not None:
                then(study)
    except BaseException as exc:
        for new_file in new_files:
            if not new_file.unchanged:
                storage.delete(new_file.key)
        if isinstance(exc, OSError):
            raise IdentityCorrectionError(f"storage failure: {exc.strerror or exc}; nothing was changed") from exc
        raise
    replaced = [(new_file.instance.storage_key, new_file.instance.sha256) for new_file in new_files
                if not new_file.unchanged]
    transaction.on_commit(lambda: _delete_old_files(storage, replaced))
    return study


def identity_values(patient, accession_number):
    """The DICOM values (by keyword) that make a study belong to `patient` with `accession_number`."""
    return {
        "PatientID": patient.mrn,
        "IssuerOfPatientID": patient.issuer,
        "PatientName": patient.dicom_name,
        "PatientBirthDate": patient.birth_date.strftime("%Y%m%d") if patient.birth_date else "",
        # PS3.3 C.7.1.1: M, F or O; an unknown sex is an empty value.
        "PatientSex": "" if patient.sex == Sex.UNKNOWN else patient.sex,
        "AccessionNumber": accession_number or "",
    }


def _rewrite(instance, values, storage):
    """Write a copy of the instance's file with `values` in its header, under the key of its new content."""
    with storage.open(instance.storage_key) as source, storage.incoming_file() as target:
        try:
            syntax = dcmread(source, stop_before_pixels=True).file_meta.TransferSyntaxUID
            source.seek(0)
            if syntax == DeflatedExplicitVRLittleEndian:
                # The whole data set is one deflated stream: there is no header to rewrite apart from the pixels.
                dataset = dcmread(source)
                _apply(dataset, values)
                dataset.save_as(target, enforce_file_format=False)
            else:
                dataset = dcmread(source, stop_before_pixels=True)
                pixels_at = source.tell()  # pydicom stops at the Pixel Data tag (or at the end of the file)
                _apply(dataset, values)
                dataset.save_as(target, enforce_file_format=False)
                header_length = target.tell()
                source.seek(pixels_at)
                shutil.copyfileobj(source, target, COPY_CHUNK)  # Pixel Data and whatever follows, unchanged
        except Exception as exc:
            Path(target.name).unlink(missing_ok=True)
            raise IdentityCorrectionError(
                f"cannot rewrite instance {instance.sop_instance_uid}: {exc}") from exc
    path = Path(target.name)
    try:
        header = _verify(path, instance, values, None if syntax == DeflatedExplicitVRLittleEndian else header_length)
        size, sha256 = file_digest(path)
        key = storage.key_for(instance.sop_instance_uid, sha256)
        if key == instance.storage_key:
            path.unlink()  # the file already said all this
        else:
            storage.store(path, key)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return _NewFile(instance, key, size, sha256, header)


def _apply(dataset, values):
    texts = [value for keyword, value in values.items() if keyword != "PatientBirthDate" and value]
    if not _character_set_encodes(dataset, texts):
        # The names need a character set the file does not declare: decode every text value under the old one,
        # then declare UTF-8, which pydicom uses to encode them all again when writing.
        dataset.decode()
        dataset.SpecificCharacterSet = "ISO_IR 192"
    for keyword, value in values.items():
        if keyword == "IssuerOfPatientID" and not value:
            # Type 3: an empty issuer means the local one, said by leaving the attribute out.
            if keyword in dataset:
                delattr(dataset, keyword)
            continue
        setattr(dataset, keyword, value)


def _character_set_encodes(dataset, texts):
    if all(text.isascii() for text in texts):
        return True
    declared = dataset.get("SpecificCharacterSet")
    if not declared or declared in ("ISO_IR 6", ["ISO_IR 6"]):
        return False  # the default repertoire is ASCII (PS3.5 6.1.2.2)
    encodings = convert_encodings(declared)
    if len(encodings) != 1:
        return False  # ISO 2022 code extensions: simpler to switch the file to UTF-8
    try:
        for text in texts:
            text.encode(encodings[0])
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _verify(path, instance, values, header_length):
    """Read the new file back as ingest would: the same instance, the new values, the pixel data where the
    old header ended. Returns its header as DICOM JSON for the index."""
    with open(path, "rb") as written:
        dataset = dcmread(written, stop_before_pixels=True)
        if header_length is not None and written.tell() != header_length:
            raise IdentityCorrectionError(f"the rewritten header of {instance.sop_instance_uid} does not end "
                                          f"where its pixel data begins")
    if str(dataset.SOPInstanceUID) != instance.sop_instance_uid:
        raise IdentityCorrectionError(f"the rewritten file of {instance.sop_instance_uid} names another instance")
    for keyword, value in values.items():
        if str(dataset.get(keyword, "") or "") != value:
            raise IdentityCorrectionError(f"the rewritten file of {instance.sop_instance_uid} does not hold the "
                                          f"new {keyword}")
    return _header_json(dataset)


@transaction.atomic
def _update_index(study, new_files, patient, values, user, channel):
    study = Study.objects.select_for_update().select_related("patient").get(pk=study.pk)
    current = dict(Instance.objects.filter(series__study=study).values_list("pk", "storage_key"))
    if current != {new_file.instance.pk: new_file.instance.storage_key for new_file in new_files}:
        raise IdentityCorrectionError("images of the study arrived or changed while it was being corrected; "
                                      "nothing was changed, try again")
    for new_file in new_files:
        if not new_file.unchanged:
            Instance.objects.filter(pk=new_file.instance.pk).update(
                storage_key=new_file.key, sha256=new_file.sha256, file_size=new_file.size, header=new_file.header)
    before = _identity_of(study)
    old_patient = study.patient
    study.patient = patient
    study.dicom_patient_id = values["PatientID"]
    study.issuer_of_patient_id = values["IssuerOfPatientID"]
    study.patient_name = values["PatientName"]
    study.patient_birth_date = values["PatientBirthDate"]
    study.patient_sex = values["PatientSex"]
    study.accession_number = values["AccessionNumber"]
    study.size_bytes = Instance.objects.filter(series__study=study).aggregate(total=Sum("file_size"))["total"] or 0
    study.save(update_fields=["patient", *PATIENT_FIELDS, "accession_number", "size_bytes", "updated_at"])
    after = _identity_of(study)
    _audit(study, old_patient, before, after, user, channel, len(new_files))
    return study


def _identity_of(study):
    return {"patient": study.patient.mrn if study.patient_id else "", "accession_number": study.accession_number,
            **{name: getattr(study, name) for name in PATIENT_FIELDS}}


def _audit(study, old_patient, before, after, user, channel, instances):
    actor = user.get_username() if user is not None else "system"
    common = {"channel": channel, "actor": actor, "user": user, "object_type": "study",
              "object_id": study.study_instance_uid, "instances": instances}
    patient_keys = ("patient", *PATIENT_FIELDS)
    if any(before[key] != after[key] for key in patient_keys):
        # Patient Record: the images now belong to another patient record (or its demographics changed).
        record_audit_event(AuditEventCode.PATIENT_RECORD, action="U", patient=study.patient,
                           previous_patient=old_patient.pk if old_patient else None,
                           old={key: before[key] for key in patient_keys},
                           new={key: after[key] for key in patient_keys}, **common)
    if before["accession_number"] != after["accession_number"]:
        record_audit_event(AuditEventCode.PROCEDURE_RECORD, action="U", patient=study.patient,
                           old={"accession_number": before["accession_number"]},
                           new={"accession_number": after["accession_number"]}, **common)


def _delete_old_files(storage, old):
    """After the commit: the replaced files, and the thumbnails rendered from them (named by their digest)."""
    for key, sha256 in old:
        if Instance.objects.filter(storage_key=key).exists():
            continue  # never delete a file the index still names
        storage.delete(key)
        folder = Path(settings.DATA_DIR) / THUMBNAIL_FOLDER / sha256[:2] / sha256[2:4]
        for thumbnail in folder.glob(f"{sha256}.*.png"):
            thumbnail.unlink(missing_ok=True)
