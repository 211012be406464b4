"""The DICOM JSON model (PS3.18 F.2) as archive/dicomweb/dicom_json.py writes it."""
from pydicom.dataset import Dataset

from archive.dicomweb.dicom_json import dataset_to_json


def test_person_names_are_objects_with_an_alphabetic_component():
    dataset = Dataset()
    dataset.PatientName = "Doe^Jane"

    assert dataset_to_json(dataset)["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}


def test_integer_and_decimal_strings_are_json_numbers():
    dataset = Dataset()
    dataset.NumberOfStudyRelatedSeries = 3
    dataset.PixelSpacing = "0.5\\0.25"

    encoded = dataset_to_json(dataset)

    assert encoded["00201206"] == {"vr": "IS", "Value": [3]}
    assert encoded["00280030"] == {"vr": "DS", "Value": [0.5, 0.25]}


def test_empty_attributes_carry_their_vr_and_no_value():
    dataset = Dataset()
    dataset.AccessionNumber = ""
    dataset.ReferringPhysicianName = ""

    assert dataset_to_json(dataset) == {"00080050": {"vr": "SH"}, "00080090": {"vr": "PN"}}


def test_multiple_values_become_a_list():
    dataset = Dataset()
    dataset.ModalitiesInStudy = "CT\\MR"

    assert dataset_to_json(dataset)["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}


def test_query_control_attributes_are_left_out_and_tags_are_in_order():
    dataset = Dataset()
    dataset.StudyInstanceUID = "1.2.3"
    dataset.PatientID = "PAT001"
    dataset.QueryRetrieveLevel = "STUDY"
    dataset.RetrieveAETitle = "ARCHIVE"
    dataset.SpecificCharacterSet = "ISO_IR 192"

    assert list(dataset_to_json(dataset)) == ["00100020", "0020000D"]
