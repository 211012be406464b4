"""Each role signs in at /accounts/login/ and lands on its home page."""
import pytest
from django.test import Client

from radiology.choices import Role
from tests.factories import PASSWORD, UserFactory


@pytest.mark.parametrize("role", list(Role))
def test_each_role_signs_in_and_sees_its_home_page(db, role):
    user = UserFactory(role=role)
    client = Client(enforce_csrf_checks=True)
    login_page = client.get("/accounts/login/")
    response = client.post("/accounts/login/", {
        "username": user.username, "password": PASSWORD,
        "csrfmiddlewaretoken": login_page.cookies["csrftoken"].value,
    }, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert response.status_code == 200
    assert role.label in response.content.decode()


def test_a_wrong_password_is_a_form_error(db):
    user = UserFactory(role=Role.CLINICIAN)
    response = Client().post("/accounts/login/", {"username": user.username, "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in response.client.session


def test_anonymous_visitors_are_sent_to_sign_in(db):
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_signing_out_ends_the_session(client, clinician):
    client.force_login(clinician)
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_only_administrators_get_into_the_admin_site(client, clinician, administrator):
    client.force_login(clinician)
    assert client.get("/admin/").status_code == 302
    client.force_login(administrator)
    assert client.get("/admin/").status_code == 200
