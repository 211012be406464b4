import datetime
from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from radiology.choices import Role, Sex
from radiology.models import Patient
from radiology.roles import assign_role

# Demo accounts: one per role. The passwords are public; never run seed_demo on a production database.
DEMO_USERS = [
    ("clinician", Role.CLINICIAN, "Gregory", "House", "demo-clinician"),
    ("radiologist", Role.RADIOLOGIST, "Marie", "Curie", "demo-radiologist"),
    ("technologist", Role.TECHNOLOGIST, "Wilhelm", "Roentgen", "demo-technologist"),
    ("admin", Role.ADMINISTRATOR, "Ada", "Admin", "demo-admin"),
]

DEMO_PATIENTS = [
    ("DEMO0001", "Doe", "Jane", datetime.date(1970, 3, 14), Sex.FEMALE),
    ("DEMO0002", "Doe", "John", datetime.date(1968, 11, 2), Sex.MALE),
    ("DEMO0003", "Nakamura", "Aiko", datetime.date(1985, 7, 21), Sex.FEMALE),
    ("DEMO0004", "Okafor", "Chidi", datetime.date(1992, 1, 5), Sex.MALE),
    ("DEMO0005", "Müller", "Jürgen", datetime.date(1955, 9, 30), Sex.MALE),
    ("DEMO0006", "García", "Lucía", datetime.date(2001, 12, 24), Sex.FEMALE),
]


class Command(BaseCommand):
    help = ("Load demo data (a user per role, a few patients, and what each app's `demo` module adds, such as "
            "generated studies). Safe to run again: it updates what it made.")

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        for username, role, first_name, last_name, password in DEMO_USERS:
            user, _ = User.objects.update_or_create(
                username=username,
                defaults={"first_name": first_name, "last_name": last_name, "email": f"{username}@demo.invalid",
                          "is_active": True})
            user.set_password(password)
            user.save()
            assign_role(user, role)
        for mrn, family, given, birth_date, sex in DEMO_PATIENTS:
            Patient.objects.update_or_create(
                mrn=mrn, issuer="",
                defaults={"family_name": family, "given_name": given, "birth_date": birth_date, "sex": sex})

        # Apps that build on this one add their own demo data (archive: studies) without this app importing them.
        for app_config in apps.get_app_configs():
            if app_config.name != "radiology" and find_spec(f"{app_config.name}.demo"):
                import_module(f"{app_config.name}.demo").seed(self.stdout)

        self.stdout.write(f"Demo data ready: {len(DEMO_USERS)} users, {len(DEMO_PATIENTS)} patients.")
        self.stdout.write("Demo log-ins (user / password):")
        for username, role, _, _, password in DEMO_USERS:
            self.stdout.write(f"  {role.label:<20} {username:<13} / {password}")
