"""Demo RIS data for `manage.py seed_demo`: a procedure catalogue, a station per modality, a radiologist reading
rule, orders for the archive's demo studies (they reconcile when the studies arrive) and today's schedule."""
import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from radiology.choices import AuditChannel, Role
from radiology.models import Patient
from worklist import orders
from worklist.choices import Priority
from worklist.models import Order, ProcedureType, ReadingAssignmentRule, Station

# (code, name, modality, body part, subspecialty, minutes)
DEMO_PROCEDURES = [
    ("CTHEADWO", "CT HEAD WO CONTRAST", "CT", "HEAD", "neuro", 15),
    ("CTCHESTWO", "CT CHEST WO CONTRAST", "CT", "CHEST", "chest", 15),
    ("CTABDW", "CT ABDOMEN PELVIS W CONTRAST", "CT", "ABDOMEN", "body", 20),
    ("MRKNEEL", "MR KNEE LEFT", "MR", "KNEE", "msk", 40),
    ("MRBRAIN", "MR BRAIN WO CONTRAST", "MR", "BRAIN", "neuro", 40),
    ("CRCHEST", "XR CHEST 2 VIEWS", "CR", "CHEST", "chest", 10),
    ("USABD", "US ABDOMEN COMPLETE", "US", "ABDOMEN", "body", 30),
]
# (name, AE title, modality, room)
DEMO_STATIONS = [
    ("CT scanner 1", "CT_ROOM1", "CT", "Radiology room 1"),
    ("MR scanner 1", "MR_ROOM2", "MR", "Radiology room 2"),
    ("X-ray room 3", "CR_ROOM3", "CR", "Radiology room 3"),
    ("Ultrasound 4", "US_ROOM4", "US", "Radiology room 4"),
]
# Orders for the archive's demo studies (archive/demo.py): (placer number, MRN, procedure, accession, priority)
DEMO_ORDERS_WITH_IMAGES = [
    ("DEMO-P1", "DEMO0001", "CTHEADWO", "DEMOACC0001", Priority.STAT),
    ("DEMO-P2", "DEMO0002", "MRKNEEL", "DEMOACC0002", Priority.ROUTINE),
    ("DEMO-P3", "DEMO0003", "CTCHESTWO", "DEMOACC0003", Priority.URGENT),
]
# Today's schedule: (placer number, MRN, procedure, station AE, hour)
DEMO_SCHEDULE = [
    ("DEMO-P4", "DEMO0004", "CRCHEST", "CR_ROOM3", 9),
    ("DEMO-P5", "DEMO0005", "CTABDW", "CT_ROOM1", 10),
    ("DEMO-P6", "DEMO0006", "USABD", "US_ROOM4", 11),
    ("DEMO-P7", "DEMO0001", "MRBRAIN", "MR_ROOM2", 14),
]


def seed(stdout):
    for code, name, modality, body_part, subspecialty, minutes in DEMO_PROCEDURES:
        ProcedureType.objects.update_or_create(code=code, defaults={
            "name": name, "modality": modality, "body_part": body_part, "subspecialty": subspecialty,
            "default_duration_minutes": minutes, "active": True})
    for name, ae_title, modality, location in DEMO_STATIONS:
        Station.objects.update_or_create(ae_title=ae_title, defaults={
            "name": name, "modality": modality, "location": location, "active": True})
    radiologists = Group.objects.get(name=Role.RADIOLOGIST)
    ReadingAssignmentRule.objects.get_or_create(modality="", body_part="", subspecialty="", group=radiologists)

    clinician = get_user_model().objects.filter(username="clinician").first()
    created = 0
    for placer, mrn, code, accession, priority in DEMO_ORDERS_WITH_IMAGES:
        created += _order(placer, mrn, code, clinician, accession_number=accession, priority=priority) is not None
    today = timezone.localdate()
    for placer, mrn, code, ae_title, hour in DEMO_SCHEDULE:
        start = timezone.make_aware(datetime.datetime.combine(today, datetime.time(hour)))
        created += _order(placer, mrn, code, clinician, start=start,
                          station=Station.objects.get(ae_title=ae_title)) is not None
    stdout.write(f"Demo RIS: {len(DEMO_PROCEDURES)} procedures, {len(DEMO_STATIONS)} stations, "
                 f"{created} new orders.")


def _order(placer, mrn, code, clinician, **options):
    if Order.objects.filter(placer_order_number=placer).exists():
        return None
    return orders.create_order(
        patient=Patient.objects.get(mrn=mrn, issuer=""), procedure=ProcedureType.objects.get(code=code),
        placer_order_number=placer, referring_physician=clinician, reason="Demo order", actor="seed_demo",
        channel=AuditChannel.SYSTEM, **options)
