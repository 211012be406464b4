"""Factories for RIS tests: a procedure and station per modality, orders made through the order services
(so they have their status history, accession number and Study Instance UID like real ones)."""
import datetime
import itertools

import factory
from django.utils import timezone

from radiology.choices import AuditChannel
from tests.factories import PatientFactory
from worklist import orders
from worklist.models import ProcedureType, Station

_codes = itertools.count(1)


class ProcedureTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProcedureType
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"PROC{n:04d}")
    name = factory.LazyAttribute(lambda procedure: f"{procedure.modality} {procedure.body_part} STUDY")
    modality = "CT"
    body_part = "CHEST"
    subspecialty = "chest"
    default_duration_minutes = 20


class StationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Station
        django_get_or_create = ["ae_title"]

    name = factory.LazyAttribute(lambda station: f"{station.modality} scanner {station.ae_title}")
    ae_title = factory.Sequence(lambda n: f"STATION{n}")
    modality = "CT"
    location = factory.Sequence(lambda n: f"Room {n}")


def make_order(*, patient=None, procedure=None, user=None, start=None, station=None, **options):
    """An order created as the portal would create it; scheduled when `start` (or `station`) is given."""
    if station is not None and start is None:
        start = timezone.now().replace(microsecond=0) + datetime.timedelta(hours=next(_codes))
    return orders.create_order(
        patient=patient or PatientFactory(), procedure=procedure or ProcedureTypeFactory(),
        actor=user.get_username() if user else "test", channel=AuditChannel.WEB, user=user, start=start,
        station=station, **options)


def make_scheduled_order(station=None, procedure=None, **options):
    """An order booked on a station of its procedure's modality."""
    if procedure is None:
        station = station or StationFactory()
        procedure = ProcedureTypeFactory(modality=station.modality)
    station = station or StationFactory(modality=procedure.modality)
    return make_order(station=station, procedure=procedure, **options)


def make_readable_order(**options):
    """A scheduled order whose images arrived: a study linked and the order completed (on the reading worklist)."""
    from archive.models import Study
    from worklist.choices import OrderStatus

    order = make_scheduled_order(**options)
    order.study = Study.objects.create(study_instance_uid=order.study_instance_uid, patient=order.patient,
                                       accession_number=order.accession_number)
    order.save(update_fields=["study"])
    return orders.change_status(order, OrderStatus.COMPLETED, actor="CT01", channel=AuditChannel.DICOM)


def token_client(user):
    """A REST API client authenticated as `user` with an API token (as an EHR or script would be)."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client
