"""`manage.py seed_demo` loads a user per role and a few patients, and can run again."""
import io

from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from radiology.choices import Role
from radiology.management.commands.seed_demo import DEMO_USERS
from radiology.models import Patient
from radiology.roles import user_role


def seed():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seeding_twice_leaves_one_copy_of_everything(db):
    seed()
    users, patients = get_user_model().objects.count(), Patient.objects.count()
    seed()
    assert (get_user_model().objects.count(), Patient.objects.count()) == (users, patients)
    assert patients >= 5


def test_every_role_gets_a_demo_user_whose_printed_password_works(db):
    output = seed()
    for username, role, _, _, password in DEMO_USERS:
        assert f"{username:<13} / {password}" in output
        user = authenticate(username=username, password=password)
        assert user is not None and user_role(user) == role
    assert {role for _, role, *_ in DEMO_USERS} == set(Role)


def test_reseeding_restores_a_changed_demo_password(db):
    seed()
    user = get_user_model().objects.get(username="clinician")
    user.set_password("changed-by-someone")
    user.save()
    seed()
    assert authenticate(username="clinician", password="demo-clinician") is not None
