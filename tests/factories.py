import datetime
import os

import factory
from django.contrib.auth import get_user_model

from radiology.choices import Sex
from radiology.models import Patient
from radiology.roles import assign_role

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    """A user with a role: UserFactory(role="radiologist")."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda user: f"{user.username}@hospital.test")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def role(user, create, extracted, **kwargs):
        user.save()
        if extracted:
            assign_role(user, extracted)


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    # The process id keeps MRNs unique when several processes (tests and `manage.py shell` scripts run against
    # one platform) each count from zero.
    mrn = factory.Sequence(lambda n: f"MRN{os.getpid() % 100000:05d}{n:05d}")
    family_name = factory.Faker("last_name")
    given_name = factory.Faker("first_name")
    birth_date = factory.Faker("date_between", start_date=datetime.date(1930, 1, 1), end_date=datetime.date(2020, 1, 1))
    sex = Sex.FEMALE
