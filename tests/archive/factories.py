"""Building DICOM datasets and Part 10 files for tests, and putting them into the archive."""
import tempfile
from pathlib import Path

import numpy as np
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from archive.ingest import ingest_file


def make_dataset(*, patient_id="PAT001", patient_name="Doe^Jane", birth_date="19700314", sex="F",
                 study_uid=None, series_uid=None, sop_uid=None, sop_class_uid=CTImageStorage, modality="CT",
                 study_date="20260115", study_time="101500", accession_number="ACC001", study_id="1",
                 study_description="CT HEAD", series_description="AXIAL", series_number=1, instance_number=1,
                 referring_physician="House^Gregory", body_part="HEAD", rows=16, columns=16, **extra):
    """A small, valid image instance (16-bit monochrome pixels) with the given attributes."""
    ds = Dataset()
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = birth_date
    ds.PatientSex = sex
    ds.StudyDate = study_date
    ds.StudyTime = study_time
    ds.SeriesDate = study_date
    ds.SeriesTime = study_time
    ds.AccessionNumber = accession_number
    ds.StudyID = study_id
    ds.StudyDescription = study_description
    ds.SeriesDescription = series_description
    ds.ReferringPhysicianName = referring_physician
    ds.Modality = modality
    ds.BodyPartExamined = body_part
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    pixels = (np.arange(rows * columns, dtype=np.uint16).reshape(rows, columns) * 7 + instance_number) % 4096
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def write_part10(dataset, path):
    """Write `dataset` as a DICOM Part 10 file and return its path."""
    path = Path(path)
    dataset.save_as(path, enforce_file_format=True)
    return path


def ingest_dataset(dataset, calling_ae="TESTSCU"):
    """Archive `dataset` through the real ingest path; returns the IngestResult."""
    with tempfile.TemporaryDirectory() as folder:
        return ingest_file(write_part10(dataset, Path(folder) / "instance.dcm"), calling_ae=calling_ae)


def bundled_file_path(name):
    """A file from pydicom's bundled test data (compressed transfer syntaxes among them)."""
    return Path(get_testdata_file(name))


def copy_of_testdata(name, folder, *, study_uid=None, series_uid=None, sop_uid=None, patient_id=None):
    """A copy of one of pydicom's bundled files with fresh (or given) UIDs, pixel data and transfer syntax
    untouched. Needed because several bundled files share one SOP Instance UID with different content
    (MR_small*.dcm, JPEG*.dcm) and some lack a Study Instance UID (JPEGLSNearLossless_08.dcm)."""
    from pydicom import dcmread

    dataset = dcmread(bundled_file_path(name))
    dataset.StudyInstanceUID = study_uid or generate_uid()
    dataset.SeriesInstanceUID = series_uid or generate_uid()
    dataset.SOPInstanceUID = sop_uid or generate_uid()
    if patient_id is not None:
        dataset.PatientID = patient_id
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    return write_part10(dataset, Path(folder) / name)


# pydicom's bundled files in each compressed transfer syntax the archive accepts, plus plain ones.
# Several share one SOP Instance UID with different content: send them through `copy_of_testdata`.
COMPRESSED_TESTDATA = [
    "JPEG2000.dcm",                   # JPEG 2000
    "MR_small_jp2klossless.dcm",      # JPEG 2000 lossless
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "JPEGLSNearLossless_08.dcm",      # JPEG-LS near-lossless
    "JPGExtended.dcm",                # JPEG extended (process 2 & 4)
    "SC_rgb_jpeg_dcmtk.dcm",          # JPEG baseline
    "MR_small_RLE.dcm",               # RLE lossless
    "image_dfl.dcm",                  # deflated explicit VR little endian
]
UNCOMPRESSED_TESTDATA = ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"]
