"""A small department's archive for the Query/Retrieve tests, built through the real ingest path.

Jane Doe (PAT001) has a CT+MR head study on 2026-01-15 10:15 with two series; John Smith (PAT002, issuer
HOSP_B) an MR knee study on 2025-12-31 23:59; Jürgen Müller (PAT003) a CT chest study on 2026-01-16 00:30;
and a second PAT001, issued by OTHER, a CR study without date or time.
"""
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.archive.factories import ingest_dataset, make_dataset


@dataclass
class StudyRecord:
    study_uid: str
    series_uids: list = field(default_factory=list)
    sop_uids: list = field(default_factory=list)


def ingest_study(series, **study_attributes):
    """Ingest one study: `series` is a list of (modality, number of instances, series attributes)."""
    record = StudyRecord(generate_uid())
    for series_number, (modality, count, series_attributes) in enumerate(series, start=1):
        series_uid = generate_uid()
        record.series_uids.append(series_uid)
        for instance_number in range(1, count + 1):
            dataset = make_dataset(study_uid=record.study_uid, series_uid=series_uid, modality=modality,
                                   series_number=series_number, instance_number=instance_number,
                                   **study_attributes, **series_attributes)
            result = ingest_dataset(dataset)
            assert result.ok, result.reason
            record.sop_uids.append(dataset.SOPInstanceUID)
    return record


def build_department():
    """The four studies described in the module docstring, keyed by a short name."""
    return {
        "jane": ingest_study(
            [("CT", 2, {"series_description": "AXIAL"}), ("MR", 1, {"series_description": "T1 SAG"})],
            patient_id="PAT001", patient_name="Doe^Jane", birth_date="19700314", sex="F",
            study_date="20260115", study_time="101500", accession_number="ACC001", study_id="11",
            study_description="CT HEAD", referring_physician="House^Gregory"),
        "john": ingest_study(
            [("MR", 1, {"series_description": "PD FS", "body_part": "KNEE"})],
            patient_id="PAT002", patient_name="Smith^John", birth_date="19821201", sex="M",
            IssuerOfPatientID="HOSP_B", study_date="20251231", study_time="235900", accession_number="ACC_2%X",
            study_id="12", study_description="MR KNEE", referring_physician="Wilson^James"),
        "jurgen": ingest_study(
            [("CT", 1, {"series_description": "LUNG"})],
            patient_id="PAT003", patient_name="Müller^Jürgen", birth_date="20000101", sex="M",
            SpecificCharacterSet="ISO_IR 192", study_date="20260116", study_time="003000",
            accession_number="ACCX2", study_id="13", study_description="CT CHEST", referring_physician=""),
        "other_pat001": ingest_study(
            [("CR", 1, {})],
            patient_id="PAT001", patient_name="Roe^Richard", birth_date="19550505", sex="M",
            IssuerOfPatientID="OTHER", study_date="", study_time="", accession_number="", study_id="14",
            study_description="CHEST PA", referring_physician="Kelso^Bob"),
    }


def identifier(level, **keys):
    """A C-FIND / C-MOVE identifier: QueryRetrieveLevel plus the given keys (None or '' ask for the key)."""
    dataset = Dataset()
    dataset.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(dataset, keyword, value if value is not None else "")
    return dataset
