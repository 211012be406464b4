"""STOW-RS through the platform as it runs (`manage.py serve`, uvicorn): a store larger than dicomweb-client's
chunk size goes as a chunked request body, and what WADO-RS gives back is what was stored. The platform is
shared with the browser tests: the stored patient is one of its own, not one they search for."""
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

from tests.archive.factories import make_dataset
from tests.platform_process import manage

pytestmark = pytest.mark.xdist_group("platform-process")


@pytest.fixture(scope="module")
def technologist_client(running_platform):
    token = manage(running_platform.env, "drf_create_token", "technologist").stdout.split()[2]
    return DICOMwebClient(f"{running_platform.base_url}/dicomweb", headers={"Authorization": f"Token {token}"},
                          chunk_size=64 * 1024)


def test_a_chunked_store_is_archived_and_retrieved_as_sent(technologist_client):
    study_uid, series_uid = generate_uid(), generate_uid()
    datasets = [make_dataset(study_uid=study_uid, series_uid=series_uid, instance_number=number, rows=256,
                             columns=256, patient_id="STOW-SERVED", patient_name="Chunked^Store",
                             accession_number="STOWSERVED") for number in (1, 2, 3)]
    response = technologist_client.store_instances(datasets)  # about 400 kB: several 64 kB chunks
    assert len(response.ReferencedSOPSequence) == 3 and "FailedSOPSequence" not in response
    for dataset in datasets:
        retrieved = technologist_client.retrieve_instance(study_uid, series_uid, dataset.SOPInstanceUID)
        assert retrieved.PixelData == dataset.PixelData
        assert retrieved.PatientID == "STOW-SERVED"
