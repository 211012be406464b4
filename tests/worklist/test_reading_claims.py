"""The reading worklist (worklist/reading.py): what is on it, in which order, and who holds each case."""
import pytest
from django.contrib.auth.models import Group

from archive.models import Study
from radiology.choices import AuditChannel, Role
from tests.factories import UserFactory
from tests.worklist.factories import ProcedureTypeFactory, make_scheduled_order
from worklist import orders, reading
from worklist.choices import OrderStatus, Priority
from worklist.models import ReadingAssignmentRule

pytestmark = pytest.mark.django_db


def readable(priority=Priority.ROUTINE, procedure=None):
    """An order whose images arrived (a study linked, completed)."""
    order = make_scheduled_order(priority=priority, **({"procedure": procedure} if procedure else {}))
    study = Study.objects.create(study_instance_uid=order.study_instance_uid, patient=order.patient,
                                 accession_number=order.accession_number)
    order.study = study
    order.save(update_fields=["study"])
    return orders.change_status(order, OrderStatus.COMPLETED, actor="CT01", channel=AuditChannel.DICOM)


def test_stat_cases_come_first_then_the_oldest():
    routine_old, stat, urgent, routine_new = (readable(Priority.ROUTINE), readable(Priority.STAT),
                                              readable(Priority.URGENT), readable(Priority.ROUTINE))

    assert list(reading.reading_worklist()) == [stat, urgent, routine_old, routine_new]


def test_orders_without_images_or_with_a_final_report_are_not_on_it():
    make_scheduled_order()
    final = orders.change_status(readable(), OrderStatus.FINAL, actor="marie", channel=AuditChannel.WEB)
    preliminary = orders.change_status(readable(), OrderStatus.PRELIMINARY, actor="marie", channel=AuditChannel.WEB)

    assert list(reading.reading_worklist()) == [preliminary]
    assert final not in reading.reading_worklist()


def test_filters_by_modality_and_body_part():
    chest_ct = readable(procedure=ProcedureTypeFactory(modality="CT", body_part="CHEST"))
    readable(procedure=ProcedureTypeFactory(modality="MR", body_part="KNEE"))

    assert list(reading.reading_worklist(modality="CT", body_part="CHEST")) == [chest_ct]


def test_a_claimed_case_cannot_be_claimed_by_someone_else(radiologist):
    case = readable()
    reading.claim(case, radiologist, channel=AuditChannel.WEB)
    colleague = UserFactory(username="pierre", role=Role.RADIOLOGIST)

    with pytest.raises(reading.ClaimRefused, match="already claimed by"):
        reading.claim(case, colleague, channel=AuditChannel.WEB)


def test_only_radiologists_claim(technologist):
    with pytest.raises(reading.ClaimRefused, match="only radiologists"):
        reading.claim(readable(), technologist, channel=AuditChannel.WEB)


def test_the_holder_releases_a_case_and_others_may_not(radiologist):
    case = reading.claim(readable(), radiologist, channel=AuditChannel.WEB)
    colleague = UserFactory(username="pierre", role=Role.RADIOLOGIST)

    with pytest.raises(reading.ClaimRefused, match="claimed by someone else"):
        reading.release(case, colleague, channel=AuditChannel.WEB)
    assert reading.release(case, radiologist, channel=AuditChannel.WEB).claimed_by is None


def test_an_assignment_rule_sets_the_group_and_can_auto_assign_the_least_loaded(radiologist):
    neuro = Group.objects.create(name="neuroradiology")
    busy = UserFactory(username="busy", role=Role.RADIOLOGIST)
    busy.groups.add(neuro)
    radiologist.groups.add(neuro)
    mr = ProcedureTypeFactory(modality="MR", body_part="BRAIN")
    reading.claim(readable(procedure=mr), busy, channel=AuditChannel.WEB)
    ReadingAssignmentRule.objects.create(modality="MR", group=neuro, auto_assign=True)

    case = readable(procedure=mr)

    assert case.assigned_group == neuro
    assert case.claimed_by == radiologist
