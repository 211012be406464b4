"""`manage.py adduser USERNAME --role ROLE [--email EMAIL] --password-stdin`."""
import io

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from radiology.choices import Role
from radiology.roles import user_role


@pytest.fixture
def adduser(monkeypatch):
    """Run the command with `password` (if any) as the line on standard input; returns its output."""
    def run(*args, password=None):
        monkeypatch.setattr("sys.stdin", io.StringIO(f"{password}\n" if password is not None else ""))
        out = io.StringIO()
        call_command("adduser", *args, stdout=out)
        return out.getvalue()
    return run


def test_creates_a_user_with_role_email_and_password(db, adduser):
    output = adduser("marie", "--role", "radiologist", "--email", "marie@hospital.test", "--password-stdin",
                     password="Polonium-1898")
    user = get_user_model().objects.get(username="marie")
    assert output.strip() == "created radiologist marie"
    assert user.email == "marie@hospital.test"
    assert user_role(user) == Role.RADIOLOGIST
    assert authenticate(username="marie", password="Polonium-1898") == user


def test_running_again_updates_the_role_and_password(db, adduser):
    adduser("ada", "--role", "technologist", "--password-stdin", password="Analytical-1843")
    output = adduser("ada", "--role", "administrator", "--password-stdin", password="Engine-Difference-2")
    user = get_user_model().objects.get(username="ada")
    assert output.strip() == "updated administrator ada"
    assert user_role(user) == Role.ADMINISTRATOR
    assert user.is_staff
    assert authenticate(username="ada", password="Engine-Difference-2") == user


def test_an_unknown_role_is_refused_with_the_valid_ones(db, adduser):
    with pytest.raises(CommandError, match="valid roles: clinician, radiologist, technologist, administrator"):
        adduser("eve", "--role", "nurse", "--password-stdin", password="Whatever-123")
    assert not get_user_model().objects.filter(username="eve").exists()


def test_a_weak_password_is_refused(db, adduser):
    with pytest.raises(CommandError, match="password refused"):
        adduser("bob", "--role", "clinician", "--password-stdin", password="123")
    assert not get_user_model().objects.filter(username="bob").exists()


def test_an_empty_standard_input_is_refused(db, adduser):
    with pytest.raises(CommandError, match="no password"):
        adduser("bob", "--role", "clinician", "--password-stdin")
