"""The four roles exist as groups with permissions after migrating."""
from django.contrib.auth.models import Group, Permission

from radiology.choices import Role
from radiology.roles import assign_role, user_role
from tests.factories import UserFactory


def test_migrating_creates_one_group_per_role(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {"clinician", "radiologist", "technologist",
                                                                 "administrator"}


def test_clinicians_may_view_but_not_change_patients(db):
    permissions = set(Group.objects.get(name="clinician").permissions.values_list("codename", flat=True))
    assert "view_patient" in permissions
    assert "change_patient" not in permissions


def test_technologists_may_correct_patient_demographics(db):
    permissions = set(Group.objects.get(name="technologist").permissions.values_list("codename", flat=True))
    assert {"view_patient", "change_patient"} <= permissions


def test_administrators_hold_every_permission(db):
    assert Group.objects.get(name="administrator").permissions.count() == Permission.objects.count()


def test_a_user_holds_one_role_at_a_time(db):
    user = UserFactory(role=Role.CLINICIAN)
    assign_role(user, Role.RADIOLOGIST)
    assert list(user.groups.values_list("name", flat=True)) == ["radiologist"]
    assert user_role(user) == Role.RADIOLOGIST


def test_only_administrators_reach_the_admin_site(db):
    user = UserFactory(role=Role.ADMINISTRATOR)
    assert user.is_staff
    assign_role(user, Role.TECHNOLOGIST)
    user.refresh_from_db()
    assert not user.is_staff
