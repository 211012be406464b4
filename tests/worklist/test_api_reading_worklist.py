"""/api/worklist/: the caller's reading worklist, and claiming and releasing its cases over the API."""
import json
import threading
import urllib.error
import urllib.request

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.test import APIClient

from radiology.choices import Role
from tests.factories import UserFactory
from tests.platform_process import PlatformProcess, manage
from tests.worklist.factories import (
    ProcedureTypeFactory, make_readable_order, make_scheduled_order, token_client,
)
from worklist.choices import Priority
from worklist.models import Order, ReadingAssignmentRule

pytestmark = pytest.mark.django_db


def worklist(user, **params):
    response = token_client(user).get("/api/worklist/", params)
    assert response.status_code == 200, response.json()
    return [case["accession_number"] for case in response.json()["results"]]


def claim(user, case):
    return token_client(user).post(f"/api/worklist/{case.pk}/claim/")


@pytest.fixture
def colleague(db):
    """Pierre, another radiologist."""
    return UserFactory(username="pierre", role=Role.RADIOLOGIST)


def test_nothing_is_served_anonymously():
    make_readable_order()
    assert APIClient().get("/api/worklist/").status_code in (401, 403)


def test_cases_with_images_come_stat_first_then_oldest(radiologist):
    routine, stat = make_readable_order(), make_readable_order(priority=Priority.STAT)
    make_scheduled_order()

    assert worklist(radiologist) == [stat.accession_number, routine.accession_number]


def test_a_case_shows_its_patient_procedure_and_study(radiologist):
    case = make_readable_order(procedure=ProcedureTypeFactory(modality="CT", body_part="CHEST"))

    [shown] = token_client(radiologist).get("/api/worklist/").json()["results"]

    assert (shown["patient"]["mrn"], shown["procedure"]["body_part"], shown["linked_study_instance_uid"],
            shown["claimed_by"]) == (case.patient.mrn, "CHEST", case.study.study_instance_uid, None)


def test_filters_by_modality_body_part_and_subspecialty(radiologist):
    chest_ct = make_readable_order(procedure=ProcedureTypeFactory(modality="CT", body_part="CHEST",
                                                                  subspecialty="chest"))
    knee_mr = make_readable_order(procedure=ProcedureTypeFactory(modality="MR", body_part="KNEE",
                                                                 subspecialty="msk"))

    assert worklist(radiologist, modality="MR") == [knee_mr.accession_number]
    assert worklist(radiologist, body_part="CHEST") == [chest_ct.accession_number]
    assert worklist(radiologist, subspecialty="msk") == [knee_mr.accession_number]


def test_mine_and_unclaimed(radiologist, colleague):
    mine, theirs, free = make_readable_order(), make_readable_order(), make_readable_order()
    claim(radiologist, mine)
    claim(colleague, theirs)

    assert worklist(radiologist, mine="true") == [mine.accession_number]
    assert worklist(radiologist, unclaimed="true") == [free.accession_number]


def test_a_bad_filter_value_is_a_400(radiologist):
    response = token_client(radiologist).get("/api/worklist/", {"mine": "perhaps"})
    assert response.status_code == 400
    assert "mine" in response.json()


def test_a_radiologist_sees_the_cases_of_their_groups_and_the_unassigned(radiologist):
    neuro, msk = Group.objects.create(name="neuro"), Group.objects.create(name="msk")
    radiologist.groups.add(neuro)
    ReadingAssignmentRule.objects.create(modality="MR", body_part="BRAIN", group=neuro)
    ReadingAssignmentRule.objects.create(modality="MR", body_part="KNEE", group=msk)
    brain = make_readable_order(procedure=ProcedureTypeFactory(modality="MR", body_part="BRAIN"))
    make_readable_order(procedure=ProcedureTypeFactory(modality="MR", body_part="KNEE"))
    chest = make_readable_order(procedure=ProcedureTypeFactory(modality="CT", body_part="CHEST"))

    assert worklist(radiologist) == [brain.accession_number, chest.accession_number]


def test_clinicians_see_only_the_cases_they_referred(clinician):
    mine = make_readable_order(referring_physician=clinician)
    make_readable_order()

    assert worklist(clinician) == [mine.accession_number]


def test_a_radiologist_claims_a_case_and_a_colleague_is_refused(radiologist, colleague):
    case = make_readable_order()

    first, second = claim(radiologist, case), claim(colleague, case)

    assert first.status_code == 200
    assert (first.json()["claimed_by"], first.json()["claimed_by_name"]) == (
        radiologist.pk, radiologist.get_full_name())
    assert second.status_code == 409
    assert second.json()["detail"] == (
        f"order {case.accession_number} is already claimed by {radiologist.get_full_name()}")


def test_claiming_a_case_that_is_not_on_the_worklist_is_refused_with_the_reason(radiologist):
    case = make_scheduled_order()
    response = claim(radiologist, case)
    assert response.status_code == 409
    assert "not on the reading worklist" in response.json()["detail"]


def test_only_radiologists_claim(technologist, clinician):
    case = make_readable_order(referring_physician=clinician)

    assert claim(clinician, case).status_code == 403  # no permission to change orders at all
    refused = claim(technologist, case)
    assert refused.status_code == 409 and refused.json()["detail"] == "only radiologists claim cases"
    assert Order.objects.get(pk=case.pk).claimed_by is None


def test_the_holder_releases_a_case_and_a_colleague_may_not(radiologist, colleague):
    case = make_readable_order()
    claim(radiologist, case)
    client = token_client(radiologist)

    refused = token_client(colleague).post(f"/api/worklist/{case.pk}/release/")
    released = client.post(f"/api/worklist/{case.pk}/release/")

    assert refused.status_code == 409 and "claimed by someone else" in refused.json()["detail"]
    assert released.status_code == 200 and released.json()["claimed_by"] is None


def test_an_administrator_releases_anyones_case(radiologist, administrator):
    case = make_readable_order()
    claim(radiologist, case)

    response = token_client(administrator).post(f"/api/worklist/{case.pk}/release/")

    assert response.status_code == 200
    assert Order.objects.get(pk=case.pk).claimed_by is None


def claim_from_two_threads(url_for, tokens):
    """POST the claim once per token, all threads released at the same instant; {token: HTTP status}."""
    start = threading.Barrier(len(tokens))
    answers = {}

    def claim_in_thread(token):
        try:
            start.wait(timeout=10)
            answers[token] = url_for(token)
        except Exception as exc:  # reported by the assertion, instead of lost with the thread
            answers[token] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim_in_thread, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


# SQLite's in-memory test database is one shared cache whose table locks fail at once instead of waiting, unlike
# the platform's SQLite file in WAL mode; the test below runs the same race against a real `serve` on that file.
@pytest.mark.skipif(connection.vendor == "sqlite", reason="needs concurrent writers: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_claims_on_one_case_give_one_200_and_one_409(radiologist, colleague):
    case = make_readable_order()
    clients = {user.username: token_client(user) for user in (radiologist, colleague)}

    answers = claim_from_two_threads(
        lambda username: clients[username].post(f"/api/worklist/{case.pk}/claim/").status_code, list(clients))

    assert sorted(answers.values(), key=str) == [200, 409], answers
    winner = next(username for username, code in answers.items() if code == 200)
    assert Order.objects.get(pk=case.pk).claimed_by.username == winner


SEED_A_CASE_AND_TWO_RADIOLOGISTS = """
import json
from rest_framework.authtoken.models import Token
from radiology.choices import Role
from tests.factories import UserFactory
from tests.worklist.factories import make_readable_order
tokens = [Token.objects.create(user=UserFactory(username=name, role=Role.RADIOLOGIST)).key
          for name in ("marie", "pierre")]
print(json.dumps({"case": make_readable_order().pk, "tokens": tokens}))
"""


def test_two_simultaneous_claims_on_a_running_platform_give_one_200_and_one_409(tmp_path):
    platform = PlatformProcess(tmp_path, seed=False).start()
    try:
        shell = manage(platform.env, "shell", "-c", SEED_A_CASE_AND_TWO_RADIOLOGISTS)
        seeded = json.loads(shell.stdout.splitlines()[-1])  # after the shell's banner

        def claim_over_http(token):
            request = urllib.request.Request(f"{platform.base_url}/api/worklist/{seeded['case']}/claim/",
                                             method="POST", headers={"Authorization": f"Token {token}"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, json.load(response)
            except urllib.error.HTTPError as error:
                return error.code, json.load(error)

        answers = claim_from_two_threads(claim_over_http, seeded["tokens"])
    finally:
        platform.stop()

    assert sorted((answer[0] for answer in answers.values()), key=str) == [200, 409], answers
    [won] = [body for code, body in answers.values() if code == 200]
    [lost] = [body for code, body in answers.values() if code == 409]
    assert lost["detail"].endswith(f"is already claimed by {won['claimed_by_name']}")


def test_a_case_is_shown_alone_and_an_order_without_images_is_not_a_case(radiologist):
    case, waiting = make_readable_order(), make_scheduled_order()
    client = token_client(radiologist)

    assert client.get(f"/api/worklist/{case.pk}/").json()["accession_number"] == case.accession_number
    assert client.get(f"/api/worklist/{waiting.pk}/").status_code == 404
