"""Finding studies on /studies/: by patient name, patient ID, accession number, date range and modality."""
import pytest
from pydicom.uid import generate_uid

from archive.models import Study
from radiology.models import Patient
from tests.archive.factories import ingest_dataset, make_dataset
from tests.factories import UserFactory


def archived_study(**attributes):
    """One archived study of one instance; `modalities` makes one series per modality."""
    modalities = attributes.pop("modalities", [attributes.pop("modality", "CT")])
    study_uid = generate_uid()
    for number, modality in enumerate(modalities, start=1):
        result = ingest_dataset(make_dataset(study_uid=study_uid, modality=modality, series_number=number,
                                             **attributes))
        assert result.ok, result.reason
    return Study.objects.get(study_instance_uid=study_uid)


@pytest.fixture
def studies(db):
    return {
        "jane_ct": archived_study(patient_name="Doe^Jane", patient_id="P1", accession_number="A1",
                                  study_date="20260110", modality="CT"),
        "john_mr": archived_study(patient_name="Doe^John", patient_id="P2", accession_number="A2",
                                  study_date="20260120", modality="MR"),
        "aiko_ctmr": archived_study(patient_name="Nakamura^Aiko", patient_id="P3", accession_number="A3",
                                    study_date="20260201", modalities=["CT", "MR"]),
        "old_us": archived_study(patient_name="Smith^Ann", patient_id="P4", accession_number="A4",
                                 study_date="20250101", modality="US"),
    }


def found(response, studies):
    names = {study.pk: name for name, study in studies.items()}
    return [names[study.pk] for study in response.context["page"]]


def test_without_criteria_the_newest_studies_come_first(client, radiologist, studies):
    client.force_login(radiologist)
    assert found(client.get("/studies/"), studies) == ["aiko_ctmr", "john_mr", "jane_ct", "old_us"]


@pytest.mark.parametrize("name", ["doe", "DOE^J", "Doe, J", "D*e^J"])
def test_a_patient_name_prefix_matches_case_insensitively(client, radiologist, studies, name):
    client.force_login(radiologist)
    assert sorted(found(client.get("/studies/", {"patient_name": name}), studies)) == ["jane_ct", "john_mr"]


def test_a_question_mark_matches_one_character_of_the_name(client, radiologist, studies):
    client.force_login(radiologist)
    assert found(client.get("/studies/", {"patient_name": "Doe^J?hn"}), studies) == ["john_mr"]


def test_the_name_matches_from_its_start_only(client, radiologist, studies):
    client.force_login(radiologist)
    assert found(client.get("/studies/", {"patient_name": "Jane"}), studies) == []


def test_a_patient_id_matches_exactly(client, technologist, studies):
    client.force_login(technologist)
    assert found(client.get("/studies/", {"patient_id": "P2"}), studies) == ["john_mr"]
    assert found(client.get("/studies/", {"patient_id": "P"}), studies) == []


def test_an_accession_number_finds_its_study(client, clinician, studies):
    client.force_login(clinician)
    assert found(client.get("/studies/", {"accession_number": "A3"}), studies) == ["aiko_ctmr"]


def test_the_date_range_includes_both_ends(client, radiologist, studies):
    client.force_login(radiologist)
    response = client.get("/studies/", {"date_from": "2026-01-10", "date_to": "2026-01-20"})
    assert found(response, studies) == ["john_mr", "jane_ct"]


def test_an_open_ended_date_range(client, radiologist, studies):
    client.force_login(radiologist)
    assert found(client.get("/studies/", {"date_to": "2025-12-31"}), studies) == ["old_us"]
    assert found(client.get("/studies/", {"date_from": "2026-01-15"}), studies) == ["aiko_ctmr", "john_mr"]


def test_a_reversed_date_range_is_a_form_error(client, radiologist, studies):
    client.force_login(radiologist)
    response = client.get("/studies/", {"date_from": "2026-02-01", "date_to": "2026-01-01"})
    assert "ends before it starts" in response.content.decode()
    assert len(response.context["page"]) == 0


def test_a_modality_matches_any_series_of_the_study(client, radiologist, studies):
    client.force_login(radiologist)
    assert found(client.get("/studies/", {"modality": "MR"}), studies) == ["aiko_ctmr", "john_mr"]


def test_the_modality_choices_are_those_in_the_archive(client, radiologist, studies):
    client.force_login(radiologist)
    choices = [value for value, _ in client.get("/studies/").context["form"].fields["modality"].choices]
    assert choices == ["", "CT", "MR", "US"]


def test_a_modality_matches_whole_values_only(client, radiologist, db):
    ct = archived_study(modality="CT")
    archived_study(modality="CTX")
    client.force_login(radiologist)
    assert [study.pk for study in client.get("/studies/", {"modality": "CT"}).context["page"]] == [ct.pk]


def test_criteria_combine(client, radiologist, studies):
    client.force_login(radiologist)
    response = client.get("/studies/", {"patient_name": "Doe", "modality": "CT"})
    assert found(response, studies) == ["jane_ct"]


def test_a_patient_link_lists_that_patients_studies(client, clinician, studies):
    client.force_login(clinician)
    patient = Patient.objects.get(mrn="P1")
    response = client.get("/studies/", {"patient": patient.pk})
    assert found(response, studies) == ["jane_ct"]
    assert "Studies of Doe, Jane" in response.content.decode()


def test_the_patient_list_links_to_each_patients_studies(client, clinician, studies):
    client.force_login(clinician)
    patient = Patient.objects.get(mrn="P1")
    assert f'href="/studies/?patient={patient.pk}"' in client.get("/", {"q": "P1"}).content.decode()


def test_the_results_show_the_study_columns(client, radiologist, studies):
    client.force_login(radiologist)
    body = client.get("/studies/", {"accession_number": "A3"}).content.decode()
    for shown in ("Nakamura, Aiko", "P3", "1970-03-14", "2026-02-01 10:15:00", "CT, MR", "CT HEAD", "A3"):
        assert shown in body
    assert f'href="/studies/{studies["aiko_ctmr"].pk}/"' in body


def test_results_are_paged_by_25(client, radiologist, db):
    for day in range(1, 28):
        archived_study(patient_id=f"Q{day}", study_date=f"202603{day:02d}")
    client.force_login(radiologist)
    first = client.get("/studies/", {"patient_name": "Doe"})
    second = client.get("/studies/", {"patient_name": "Doe", "page": 2})
    assert len(first.context["page"]) == 25 and len(second.context["page"]) == 2
    assert first.context["page"][0].study_date == "20260327"
    assert 'href="?patient_name=Doe&amp;page=2"' in first.content.decode()


def test_dicom_text_is_escaped(client, radiologist, db):
    archived_study(patient_name="<script>alert(1)</script>", study_description="<script>alert(2)</script>")
    client.force_login(radiologist)
    body = client.get("/studies/").content.decode()
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in body


def test_anonymous_visitors_are_sent_to_sign_in(client, studies):
    response = client.get("/studies/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_account_without_a_role_is_refused(client, studies):
    client.force_login(UserFactory())
    assert client.get("/studies/").status_code == 403


@pytest.mark.parametrize("persona", ["clinician", "radiologist", "technologist", "administrator"])
def test_every_role_may_search_studies(client, studies, persona, request):
    client.force_login(request.getfixturevalue(persona))
    response = client.get("/studies/")
    assert response.status_code == 200
    assert 'href="/studies/"' in response.content.decode()  # the navigation link
