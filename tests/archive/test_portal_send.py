"""Sending a study to a DICOM node from its page, and following the transfer on /studies/transfers/."""
import pytest
from django.test import Client

from archive.choices import TransferKind, TransferStatus
from archive.models import DicomNode, TransferJob
from tests.archive.factories import ingest_dataset, make_dataset


@pytest.fixture
def study(db):
    return ingest_dataset(make_dataset()).instance.series.study


@pytest.fixture
def workstation(db):
    return DicomNode.objects.create(name="Reading room 3", ae_title="RR3", host="127.0.0.1", port=11113)


def test_the_study_page_offers_every_registered_node(client, radiologist, study, workstation):
    DicomNode.objects.create(name="Offsite archive", ae_title="VNA", host="127.0.0.1", port=11114)
    client.force_login(radiologist)
    body = client.get(f"/studies/{study.pk}/").content.decode()
    assert "Reading room 3 (RR3@127.0.0.1:11113)" in body and "Offsite archive" in body


def test_sending_queues_a_transfer_job_and_says_so(client, radiologist, study, workstation):
    client.force_login(radiologist)
    response = client.post(f"/studies/{study.pk}/send/", {"node": workstation.pk}, follow=True)
    job = TransferJob.objects.get()
    assert (job.kind, job.status, job.node, job.study_instance_uid, job.requested_by, job.reason) == (
        TransferKind.SEND, TransferStatus.QUEUED, workstation, study.study_instance_uid, radiologist, "manual")
    assert response.redirect_chain == [(f"/studies/{study.pk}/", 302)]
    assert f"transfer {job.pk} is queued" in response.content.decode()


def test_technologists_may_send(client, technologist, study, workstation):
    client.force_login(technologist)
    client.post(f"/studies/{study.pk}/send/", {"node": workstation.pk})
    assert TransferJob.objects.filter(requested_by=technologist).count() == 1


def test_clinicians_may_not_send(client, clinician, study, workstation):
    client.force_login(clinician)
    assert client.post(f"/studies/{study.pk}/send/", {"node": workstation.pk}).status_code == 403
    assert not TransferJob.objects.exists()


def test_an_unknown_node_is_a_form_error(client, radiologist, study, workstation):
    client.force_login(radiologist)
    response = client.post(f"/studies/{study.pk}/send/", {"node": workstation.pk + 100})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not TransferJob.objects.exists()


def test_sending_needs_a_post(client, radiologist, study, workstation):
    client.force_login(radiologist)
    assert client.get(f"/studies/{study.pk}/send/", {"node": workstation.pk}).status_code == 405
    assert not TransferJob.objects.exists()


def test_sending_needs_the_csrf_token(radiologist, study, workstation):
    client = Client(enforce_csrf_checks=True)
    client.force_login(radiologist)
    assert client.post(f"/studies/{study.pk}/send/", {"node": workstation.pk}).status_code == 403
    assert not TransferJob.objects.exists()


def test_the_transfer_list_shows_status_counts_and_errors(client, radiologist, study, workstation):
    TransferJob.objects.create(kind=TransferKind.SEND, node=workstation, study_instance_uid=study.study_instance_uid,
                               status=TransferStatus.PARTIAL, completed=3, failed=1, attempts=2,
                               error="<b>0xA700</b> out of resources", requested_by=radiologist, reason="manual")
    client.force_login(radiologist)
    body = client.get("/studies/transfers/").content.decode()
    assert "Done with failures" in body and "RR3" in body
    assert '<td class="number">3</td>' in body and '<td class="number">1</td>' in body
    assert "&lt;b&gt;0xA700&lt;/b&gt; out of resources" in body
    assert f'href="/studies/{study.pk}/"' in body


def test_the_transfer_list_can_show_one_studys_transfers(client, radiologist, study, workstation):
    other = ingest_dataset(make_dataset(patient_id="OTHER")).instance.series.study
    for uid in (study.study_instance_uid, other.study_instance_uid):
        TransferJob.objects.create(kind=TransferKind.SEND, node=workstation, study_instance_uid=uid)
    client.force_login(radiologist)
    page = client.get("/studies/transfers/", {"study": study.pk}).context["page"]
    assert [job.study_instance_uid for job in page] == [study.study_instance_uid]


def test_the_transfer_list_refreshes_itself_while_transfers_run(client, radiologist, study, workstation):
    job = TransferJob.objects.create(kind=TransferKind.SEND, node=workstation,
                                     study_instance_uid=study.study_instance_uid)
    client.force_login(radiologist)
    assert 'data-refresh-seconds="5"' in client.get("/studies/transfers/").content.decode()
    TransferJob.objects.filter(pk=job.pk).update(status=TransferStatus.DONE)
    assert "data-refresh-seconds" not in client.get("/studies/transfers/").content.decode()


def test_clinicians_do_not_see_transfers(client, clinician, db):
    client.force_login(clinician)
    assert client.get("/studies/transfers/").status_code == 403
