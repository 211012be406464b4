"""Routing rules: arriving instances that match a rule are forwarded to its destinations, one send job per
series and destination."""
import tempfile
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from archive import routing, tasks
from archive.choices import TransferKind, TransferStatus
from archive.ingest import ingest_file
from archive.models import RoutingRule, TransferJob
from tests.archive.factories import make_dataset, write_part10
from tests.archive.remote_nodes import StoreSCP, register_node
from tests.platform_process import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def archive_folder(settings, tmp_path):
    settings.STORAGE_LOCATION = str(tmp_path / "archive")
    settings.ROUTING_DELAY_SECONDS = 5


@pytest.fixture
def queued_forwards(monkeypatch):
    """The forward_series tasks routing queues, as (job id, countdown), instead of sending them to the broker."""
    queued = []
    monkeypatch.setattr(tasks.forward_series, "apply_async",
                        lambda args, countdown: queued.append((args[0], countdown)))
    return queued


def rule(name="forward", destinations=(), **conditions):
    routing_rule = RoutingRule.objects.create(name=name, **conditions)
    routing_rule.destinations.set(destinations)
    return routing_rule


def arrive(dataset, django_capture_on_commit_callbacks, calling_ae="CT01", called_ae="RADIOLOGY"):
    """Ingest as the listener does; instance_stored is sent once the index rows commit."""
    with django_capture_on_commit_callbacks(execute=True), tempfile.TemporaryDirectory() as folder:
        return ingest_file(write_part10(dataset, Path(folder) / "in.dcm"), calling_ae=calling_ae,
                           called_ae=called_ae)


def test_a_matching_rule_makes_one_job_per_series_and_destination(
        queued_forwards, django_capture_on_commit_callbacks):
    reading, backup = register_node("READING", 104), register_node("BACKUP", 104)
    rule(modality="CT", destinations=[reading, backup])
    study_uid, first_series, second_series = generate_uid(), generate_uid(), generate_uid()
    for series_uid, count in ((first_series, 3), (second_series, 2)):
        for number in range(1, count + 1):
            arrive(make_dataset(study_uid=study_uid, series_uid=series_uid, instance_number=number),
                   django_capture_on_commit_callbacks)

    jobs = TransferJob.objects.all()
    assert sorted((job.series_instance_uid, job.node.ae_title) for job in jobs) == sorted([
        (first_series, "BACKUP"), (first_series, "READING"), (second_series, "BACKUP"), (second_series, "READING")])
    assert {(job.kind, job.status, job.study_instance_uid, job.reason) for job in jobs} == {
        (TransferKind.SEND, TransferStatus.QUEUED, study_uid, "routing: forward")}
    assert sorted(queued_forwards) == sorted((job.pk, 5) for job in jobs)


@pytest.mark.parametrize("conditions", [
    {"calling_ae": "CT01"},
    {"called_ae": "RADIOLOGY"},
    {"modality": "ct"},
    {"description_pattern": "head"},             # in the study description "CT HEAD", case-insensitive
    {"description_pattern": r"^ax(ial)?$"},      # in the series description "AXIAL"
    {"calling_ae": "CT01", "modality": "CT", "description_pattern": "HEAD|NECK"},
    {},
])
def test_rules_whose_conditions_all_hold_forward(conditions, queued_forwards, django_capture_on_commit_callbacks):
    rule(destinations=[register_node("DEST", 104)], **conditions)

    arrive(make_dataset(study_description="CT HEAD", series_description="AXIAL"),
           django_capture_on_commit_callbacks)

    assert TransferJob.objects.filter(node__ae_title="DEST").count() == 1


@pytest.mark.parametrize("conditions", [
    {"calling_ae": "MR01"},
    {"called_ae": "OTHER"},
    {"modality": "MR"},
    {"description_pattern": "knee"},
    {"calling_ae": "CT01", "modality": "MR"},
    {"description_pattern": "(unclosed"},
    {"enabled": False},
])
def test_rules_with_a_condition_that_fails_forward_nothing(
        conditions, queued_forwards, django_capture_on_commit_callbacks):
    rule(destinations=[register_node("DEST", 104)], **conditions)

    result = arrive(make_dataset(study_description="CT HEAD", series_description="AXIAL"),
                    django_capture_on_commit_callbacks)

    assert result.outcome == "stored"
    assert not TransferJob.objects.exists()
    assert queued_forwards == []


def test_an_instance_is_not_routed_back_to_the_node_it_came_from(queued_forwards, django_capture_on_commit_callbacks):
    rule(destinations=[register_node("CT01", 104), register_node("READING", 104)])

    arrive(make_dataset(), django_capture_on_commit_callbacks, calling_ae="CT01")

    assert [job.node.ae_title for job in TransferJob.objects.all()] == ["READING"]


def test_two_rules_to_one_destination_make_one_job(queued_forwards, django_capture_on_commit_callbacks):
    reading = register_node("READING", 104)
    rule("all CT", modality="CT", destinations=[reading])
    rule("heads", description_pattern="head", destinations=[reading])

    arrive(make_dataset(study_description="CT HEAD"), django_capture_on_commit_callbacks)

    assert [job.reason for job in TransferJob.objects.all()] == ["routing: all CT, heads"]


def test_an_instance_arriving_after_its_series_job_started_gets_a_new_job(
        queued_forwards, django_capture_on_commit_callbacks):
    rule(destinations=[register_node("READING", 104)])
    series_uid = generate_uid()
    arrive(make_dataset(series_uid=series_uid, instance_number=1), django_capture_on_commit_callbacks)
    TransferJob.objects.update(status=TransferStatus.RUNNING, attempts=1)

    arrive(make_dataset(series_uid=series_uid, instance_number=2), django_capture_on_commit_callbacks)

    assert sorted(TransferJob.objects.values_list("status", flat=True)) == [
        TransferStatus.QUEUED, TransferStatus.RUNNING]


def test_a_job_waits_while_its_series_is_still_arriving(queued_forwards, django_capture_on_commit_callbacks, settings):
    settings.ROUTING_DELAY_SECONDS = 600
    rule(destinations=[register_node("READING", 104)])
    arrive(make_dataset(), django_capture_on_commit_callbacks)
    job = TransferJob.objects.get()
    queued_forwards.clear()

    tasks.forward_series.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.attempts) == (TransferStatus.QUEUED, 0)
    [(job_id, countdown)] = queued_forwards
    assert job_id == job.pk and 0 < countdown <= 600


def test_a_settled_series_is_sent_in_one_association(settings, tmp_path, django_capture_on_commit_callbacks,
                                                     queued_forwards, monkeypatch):
    settings.ROUTING_DELAY_SECONDS = 0
    scp = StoreSCP(tmp_path / "received").start()
    try:
        rule(modality="CT", destinations=[register_node(scp.ae_title, scp.port)])
        series_uid = generate_uid()
        sop_uids = [arrive(make_dataset(series_uid=series_uid, instance_number=number),
                           django_capture_on_commit_callbacks).sop_instance_uid for number in (1, 2, 3)]
        [(job_id, _)] = queued_forwards
        # forward_series hands the job to run_transfer; run it here instead of through the broker.
        monkeypatch.setattr(tasks.run_transfer, "delay", lambda job_id: tasks.run_transfer.apply(args=[job_id]))

        tasks.forward_series.apply(args=[job_id])
        received = scp.received()
        associations = scp.associations()
    finally:
        scp.stop()

    job = TransferJob.objects.get()
    assert (job.status, job.completed) == (TransferStatus.DONE, 3)
    assert sorted(received) == sorted(sop_uids)
    assert associations == 1


def test_a_routing_failure_never_fails_the_store(monkeypatch, django_capture_on_commit_callbacks):
    rule(destinations=[register_node("DEST", 104)])

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(routing, "queue_series_forward", broken)

    result = arrive(make_dataset(), django_capture_on_commit_callbacks)

    assert result.outcome == "stored"


def test_forwarding_a_job_that_already_started_does_nothing(queued_forwards, monkeypatch):
    job = TransferJob.objects.create(kind=TransferKind.SEND, node=register_node("DEST", free_port()),
                                     study_instance_uid=generate_uid(), series_instance_uid=generate_uid(),
                                     status=TransferStatus.RUNNING, attempts=1)
    started = []
    monkeypatch.setattr(tasks.run_transfer, "delay", started.append)

    tasks.forward_series.apply(args=[job.pk])

    assert (started, queued_forwards) == ([], [])
