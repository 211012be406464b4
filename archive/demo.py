"""Generated demo studies for `manage.py seed_demo`: small synthetic images (no real patient data) stored
through the real ingest path. UIDs derive from fixed seeds, so running again adds nothing."""
import tempfile
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from archive.ingest import ingest_file

# (patient MRN, patient name, birth date, sex, modality, study description, body part, slices, study date)
DEMO_STUDIES = [
    ("DEMO0001", "Doe^Jane", "19700314", "F", "CT", "CT HEAD WO CONTRAST", "HEAD", 24, "20261120"),
    ("DEMO0002", "Doe^John", "19681102", "M", "MR", "MR KNEE LEFT", "KNEE", 16, "20261121"),
    ("DEMO0003", "Nakamura^Aiko", "19850721", "F", "CT", "CT CHEST WO CONTRAST", "CHEST", 24, "20261122"),
]
SIZE = 128


def seed(stdout):
    stored = 0
    with tempfile.TemporaryDirectory() as folder:
        for study_number, study in enumerate(DEMO_STUDIES):
            for dataset in _study_datasets(study_number, *study):
                path = Path(folder) / f"{dataset.SOPInstanceUID}.dcm"
                dataset.save_as(path, enforce_file_format=True)
                result = ingest_file(path, calling_ae="seed_demo")
                stored += result.outcome == "stored"
    stdout.write(f"Demo studies: {len(DEMO_STUDIES)} ({stored} new instances).")


def _uid(*parts):
    return generate_uid(entropy_srcs=["radiology-demo", *map(str, parts)])


def _phantom(modality, slice_index, slices):
    """An ellipse of soft tissue with a brighter core whose size changes along the stack, in HU-like values."""
    y, x = np.mgrid[-1:1:SIZE * 1j, -1:1:SIZE * 1j]
    z = (slice_index - slices / 2) / slices
    body = (x / 0.8) ** 2 + (y / 0.65) ** 2 <= 1 - z * z
    core = x ** 2 + (y + 0.1) ** 2 <= 0.12 * (1 - 2 * abs(z))
    image = np.where(body, 40, -1000) + np.where(core, 300 if modality == "CT" else 500, 0)
    return (image + 1024).clip(0, 4095).astype(np.uint16)


def _study_datasets(study_number, mrn, name, birth_date, sex, modality, description, body_part, slices, date):
    study_uid, series_uid = _uid(study_number, "study"), _uid(study_number, "series")
    for index in range(slices):
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
        ds.SOPInstanceUID = _uid(study_number, "instance", index)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = name, mrn, birth_date, sex
        ds.StudyDate = ds.SeriesDate = date
        ds.StudyTime = ds.SeriesTime = "093000"
        ds.AccessionNumber = f"DEMOACC{study_number + 1:04d}"
        ds.StudyID = str(study_number + 1)
        ds.StudyDescription, ds.SeriesDescription = description, f"AXIAL {body_part}"
        ds.Modality, ds.BodyPartExamined = modality, body_part
        ds.ReferringPhysicianName = "House^Gregory"
        ds.SeriesNumber, ds.InstanceNumber = 1, index + 1
        ds.SliceThickness, ds.PixelSpacing = 5, [1.5, 1.5]
        ds.ImagePositionPatient = [-96, -96, index * 5.0]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = SIZE
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.WindowCenter, ds.WindowWidth = (40, 400) if modality == "CT" else (540, 1200)
        ds.PixelData = _phantom(modality, index, slices).tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        yield ds
