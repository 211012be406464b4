"""/api/reports/: the report lifecycle over REST — start, save with the version, preliminary, sign with the
password again, addenda — with 409 for conflicts and signed reports, and clinicians limited to their orders."""
import pytest
from rest_framework.test import APIClient

from radiology.choices import AuditChannel, Role
from reporting import reports
from reporting.choices import ReportStatus
from tests.factories import PASSWORD, UserFactory
from tests.worklist.factories import make_readable_order
from worklist.choices import OrderStatus

pytestmark = pytest.mark.django_db


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def case(clinician):
    """A CT whose images arrived, referred by Gregory."""
    return make_readable_order(reason="Cough for three weeks", referring_physician=clinician)


@pytest.fixture
def draft(case, radiologist):
    response = api(radiologist).post("/api/reports/", {"order": case.pk}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def save(user, report, version, **sections):
    return api(user).patch(f"/api/reports/{report['id']}/", {"version": version, "sections": sections},
                           format="json")


def test_starting_a_report_claims_the_case_and_answers_the_draft(case, radiologist):
    response = api(radiologist).post("/api/reports/", {"order": case.pk}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["version"], body["accession_number"]) == ("draft", 1, case.accession_number)
    assert body["sections"]["clinical_information"] == "Cough for three weeks"
    case.refresh_from_db()
    assert case.claimed_by == radiologist


def test_starting_it_again_answers_the_same_report(case, radiologist, draft):
    response = api(radiologist).post("/api/reports/", {"order": case.pk}, format="json")

    assert response.status_code == 200
    assert response.json()["id"] == draft["id"]


def test_a_save_names_its_version_and_gets_the_next(radiologist, draft):
    response = save(radiologist, draft, draft["version"], findings="Small nodule in the right upper lobe.")

    assert response.status_code == 200
    assert response.json()["version"] == draft["version"] + 1
    assert response.json()["sections"]["findings"] == "Small nodule in the right upper lobe."


def test_two_saves_from_the_same_version_one_wins_the_other_gets_409(radiologist, draft):
    first = save(radiologist, draft, draft["version"], impression="First window's text.")
    second = save(radiologist, draft, draft["version"], impression="Second window's text.")

    assert first.status_code == 200
    assert second.status_code == 409
    assert "saved elsewhere" in second.json()["detail"]
    assert second.json()["version"] == first.json()["version"]
    current = api(radiologist).get(f"/api/reports/{draft['id']}/").json()
    assert current["sections"]["impression"] == "First window's text."


def test_template_fields_are_saved_with_the_sections(radiologist, draft):
    response = api(radiologist).patch(f"/api/reports/{draft['id']}/", {
        "version": draft["version"], "fields": {"nodule_size": "6", "effusion": "none"}}, format="json")

    assert response.status_code == 200
    assert response.json()["fields"] == {"nodule_size": "6", "effusion": "none"}


def test_a_save_without_a_version_is_a_bad_request(radiologist, draft):
    response = api(radiologist).patch(f"/api/reports/{draft['id']}/", {"sections": {"findings": "x"}},
                                      format="json")

    assert response.status_code == 400
    assert "version" in response.json()


def test_preliminary_releases_the_report_and_the_order_follows(case, radiologist, draft):
    saved = save(radiologist, draft, draft["version"], findings="Nodule.").json()

    response = api(radiologist).post(f"/api/reports/{draft['id']}/preliminary/", {"version": saved["version"]},
                                     format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "preliminary"
    case.refresh_from_db()
    assert case.status == OrderStatus.PRELIMINARY


def test_signing_with_the_password_makes_the_report_final(case, radiologist, draft):
    saved = save(radiologist, draft, draft["version"], impression="Benign.").json()

    response = api(radiologist).post(f"/api/reports/{draft['id']}/sign/",
                                     {"version": saved["version"], "password": PASSWORD}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["signed_by"]) == ("final", radiologist.pk)
    case.refresh_from_db()
    assert case.status == OrderStatus.FINAL


def test_signing_with_a_wrong_password_is_forbidden_and_changes_nothing(radiologist, draft):
    response = api(radiologist).post(f"/api/reports/{draft['id']}/sign/",
                                     {"version": draft["version"], "password": "not-my-password"}, format="json")

    assert response.status_code == 403
    assert "password" in response.json()["detail"]
    assert api(radiologist).get(f"/api/reports/{draft['id']}/").json()["status"] == "draft"


def test_signing_without_a_password_is_a_bad_request(radiologist, draft):
    response = api(radiologist).post(f"/api/reports/{draft['id']}/sign/", {"version": draft["version"]},
                                     format="json")

    assert response.status_code == 400
    assert "password" in response.json()


@pytest.fixture
def final(radiologist, draft):
    saved = save(radiologist, draft, draft["version"], impression="Benign.").json()
    return api(radiologist).post(f"/api/reports/{draft['id']}/sign/",
                                 {"version": saved["version"], "password": PASSWORD}, format="json").json()


def test_editing_a_final_report_is_a_conflict(radiologist, final):
    response = save(radiologist, final, final["version"], impression="Changed my mind.")

    assert response.status_code == 409
    assert "corrections are addenda" in response.json()["detail"]
    assert api(radiologist).get(f"/api/reports/{final['id']}/").json()["sections"]["impression"] == "Benign."


def test_an_addendum_is_signed_with_the_password_and_keeps_the_original(radiologist, final):
    response = api(radiologist).post(f"/api/reports/{final['id']}/addenda/",
                                     {"text": "Compared with outside CT: stable.", "password": PASSWORD},
                                     format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == ReportStatus.AMENDED
    assert [addendum["text"] for addendum in body["addenda"]] == ["Compared with outside CT: stable."]
    assert body["sections"]["impression"] == "Benign."
    assert body["text"].index("Benign.") < body["text"].index("Compared with outside CT: stable.")


def test_an_addendum_with_a_wrong_password_is_forbidden(radiologist, final):
    response = api(radiologist).post(f"/api/reports/{final['id']}/addenda/",
                                     {"text": "Stable.", "password": "guess"}, format="json")

    assert response.status_code == 403
    assert api(radiologist).get(f"/api/reports/{final['id']}/").json()["addenda"] == []


def test_an_addendum_to_a_draft_is_a_conflict(radiologist, draft):
    response = api(radiologist).post(f"/api/reports/{draft['id']}/addenda/",
                                     {"text": "More.", "password": PASSWORD}, format="json")

    assert response.status_code == 409
    assert "final reports" in response.json()["detail"]


def test_a_colleague_cannot_save_over_the_authors_draft(draft):
    colleague = UserFactory(username="pierre", role=Role.RADIOLOGIST)

    response = save(colleague, draft, draft["version"], impression="Mine now.")

    assert response.status_code == 409
    assert "being written by" in response.json()["detail"]


def test_every_version_is_listed(radiologist, draft):
    save(radiologist, draft, draft["version"], findings="One.")

    response = api(radiologist).get(f"/api/reports/{draft['id']}/versions/")

    assert response.status_code == 200
    assert [(v["version"], v["sections"]["findings"]) for v in response.json()] == [(1, ""), (2, "One.")]


def test_a_clinician_does_not_see_a_draft(clinician, draft):
    assert api(clinician).get(f"/api/reports/{draft['id']}/").status_code == 404
    assert api(clinician).get("/api/reports/").json()["results"] == []


def test_a_clinician_reads_the_released_reports_of_orders_they_referred(clinician, radiologist, final):
    other_case = make_readable_order(referring_physician=UserFactory(username="james", role=Role.CLINICIAN))
    other = reports.start_report(other_case, radiologist, channel=AuditChannel.API)
    other = reports.save_draft(other, radiologist, version=other.version, channel=AuditChannel.API,
                               sections={"impression": "Someone else's patient."})
    reports.make_preliminary(other, radiologist, version=other.version, channel=AuditChannel.API)

    listed = api(clinician).get("/api/reports/").json()["results"]

    assert [report["id"] for report in listed] == [final["id"]]
    assert api(clinician).get(f"/api/reports/{other.pk}/").status_code == 404


def test_a_clinician_cannot_write_or_sign(clinician, final, case):
    assert api(clinician).post("/api/reports/", {"order": case.pk}, format="json").status_code == 403
    assert save(clinician, final, final["version"], impression="x").status_code == 403
    assert api(clinician).post(f"/api/reports/{final['id']}/addenda/",
                               {"text": "x", "password": PASSWORD}, format="json").status_code == 403


def test_anonymous_callers_are_refused(draft):
    assert APIClient().get(f"/api/reports/{draft['id']}/").status_code in (401, 403)


def test_a_report_on_an_order_without_images_is_a_conflict(radiologist):
    from tests.worklist.factories import make_scheduled_order

    order = make_scheduled_order()

    response = api(radiologist).post("/api/reports/", {"order": order.pk}, format="json")

    assert response.status_code == 409
    assert "images available" in response.json()["detail"]


def test_the_schema_lists_the_report_actions(administrator):
    schema = api(administrator).get("/api/schema/").content.decode()

    for path in ("/api/reports/{id}/sign/", "/api/reports/{id}/addenda/", "/api/reports/{id}/preliminary/"):
        assert path in schema


def test_a_draft_on_the_wrong_order_is_entered_in_error_with_the_reason(radiologist, draft):
    response = api(radiologist).post(f"/api/reports/{draft['id']}/entered-in-error/",
                                     {"reason": "dictated on the wrong patient"}, format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancelled_reason"]) == (
        "entered_in_error", "dictated on the wrong patient")


def test_a_signed_report_cannot_be_entered_in_error(radiologist, final):
    response = api(radiologist).post(f"/api/reports/{final['id']}/entered-in-error/",
                                     {"reason": "wrong patient"}, format="json")

    assert response.status_code == 409
    assert "add an addendum instead" in response.json()["detail"]
