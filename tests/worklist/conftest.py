"""Fixtures for the worklist's DICOM tests: the archive's real listener (serving Modality Worklist and MPPS),
a station that talks to it, and small SCU helpers (pynetdicom, dcmtk's findscu -W).

The listener runs in the test process with its own database connections, so these tests are marked
`django_db(transaction=True)` and see the listener's writes (audit events, performed steps) once each
association has ended on the listener's side.
"""
import datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom.sop_class import ModalityPerformedProcedureStep, ModalityWorklistInformationFind

from tests.archive.listener_peers import (
    association_to, dcmtk, running_listener, wait_for_associations_to_end,
)
from tests.worklist.factories import StationFactory

PENDING, SUCCESS = 0xFF00, 0x0000


@pytest.fixture(scope="module")
def storage_location(tmp_path_factory):
    return tmp_path_factory.mktemp("archive")


@pytest.fixture(scope="module")
def module_listener(django_db_setup, django_db_blocker, storage_location):
    """The archive's DicomListener on 127.0.0.1 and a free port, started once per test module."""
    with django_db_blocker.unblock(), running_listener(storage_location) as listener:
        yield listener


@pytest.fixture
def listener(module_listener, settings):
    """The module's listener, closed to unknown AEs; each test's associations have ended (audit written)
    before its database is emptied."""
    settings.DICOM_OPEN = False
    yield module_listener
    wait_for_associations_to_end(module_listener)


@pytest.fixture
def ct_station(listener):
    """CT_ROOM1, the CT scanner in room 1: a registered station, not a DicomNode."""
    return StationFactory(ae_title="CT_ROOM1", name="CT scanner 1", modality="CT", location="Room 1")


@pytest.fixture
def today_at():
    """An aware datetime today at a local (settings.TIME_ZONE) hour and minute."""
    def at(hour, minute=0, days=0):
        day = timezone.localdate() + datetime.timedelta(days=days)
        return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour, minute)))
    return at


def worklist_identifier(step=None, **top_level):
    """A Modality Worklist identifier: top-level keys, and `step` (a dict) as the one Scheduled Procedure Step
    Sequence item; None values are asked for (returned), others matched."""
    identifier = Dataset()
    for keyword, value in top_level.items():
        setattr(identifier, keyword, "" if value is None else value)
    if step is not None:
        item = Dataset()
        for keyword, value in step.items():
            setattr(item, keyword, "" if value is None else value)
        identifier.ScheduledProcedureStepSequence = [item]
    return identifier


@pytest.fixture
def find_worklist(listener):
    """C-FIND on the worklist from a pynetdicom SCU: returns [(status, identifier)], final response included."""
    def find(identifier, calling_ae="CT_ROOM1"):
        with association_to(listener, [ModalityWorklistInformationFind], calling_ae=calling_ae) as association:
            return [(status.Status if status else None, found)
                    for status, found in association.send_c_find(identifier, ModalityWorklistInformationFind)]
    return find


@pytest.fixture
def matches(find_worklist):
    """The identifiers of the pending responses of a worklist C-FIND, after checking it succeeded."""
    def found(identifier, calling_ae="CT_ROOM1"):
        responses = find_worklist(identifier, calling_ae)
        assert responses[-1] == (SUCCESS, None), responses[-1]
        assert all(status == PENDING for status, _ in responses[:-1])
        return [identifier for _, identifier in responses[:-1]]
    return found


@pytest.fixture
def findscu_worklist(listener, tmp_path):
    """dcmtk's `findscu -W` against the listener: returns (CompletedProcess, response datasets)."""
    def findscu(*keys, calling_ae="CT_ROOM1", options=()):
        folder = tmp_path / f"rsp{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        arguments = [option for key in keys for option in ("-k", key)]
        result = dcmtk("findscu", "-W", *options, "-aet", calling_ae, "-aec", settings.DICOM_AET, "-X",
                       "-od", str(folder), *arguments, "127.0.0.1", str(listener.port))
        wait_for_associations_to_end(listener)
        return result, [dcmread(path) for path in sorted(Path(folder).glob("rsp*.dcm"))]
    return findscu


@pytest.fixture
def mpps(listener):
    """A pynetdicom MPPS SCU: `mpps.create(uid, attributes)` and `mpps.set(uid, modifications)` each on an
    association of their own, returning (status dataset, attribute list)."""
    class Scu:
        def __init__(self, calling_ae="CT_ROOM1"):
            self.calling_ae = calling_ae

        def create(self, sop_instance_uid, attributes):
            with association_to(listener, [ModalityPerformedProcedureStep], calling_ae=self.calling_ae) as assoc:
                return assoc.send_n_create(attributes, ModalityPerformedProcedureStep, sop_instance_uid)

        def set(self, sop_instance_uid, modifications):
            with association_to(listener, [ModalityPerformedProcedureStep], calling_ae=self.calling_ae) as assoc:
                return assoc.send_n_set(modifications, ModalityPerformedProcedureStep, sop_instance_uid)

        def as_ae(self, calling_ae):
            return Scu(calling_ae)

    return Scu()


def performed_step_attributes(order=None, status="IN PROGRESS", **extra):
    """An N-CREATE attribute list as a modality sends it for `order`'s scheduled step (or unscheduled)."""
    attributes = Dataset()
    if status is not None:
        attributes.PerformedProcedureStepStatus = status
    attributes.PerformedStationAETitle = "CT_ROOM1"
    attributes.PerformedProcedureStepID = "PPS1"
    attributes.PerformedProcedureStepStartDate = "20261128"
    attributes.PerformedProcedureStepStartTime = "101500"
    attributes.Modality = "CT"
    attributes.PatientName = order.patient.dicom_name if order else "Unknown^Walk-in"
    attributes.PatientID = order.patient.mrn if order else "WALKIN1"
    item = Dataset()
    if order is not None:
        step = order.steps.first()
        item.AccessionNumber = order.accession_number
        item.StudyInstanceUID = order.study_instance_uid
        item.ScheduledProcedureStepID = step.step_id if step else ""
        item.RequestedProcedureID = order.requested_procedure_id
    else:
        item.AccessionNumber = ""
        item.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
        item.ScheduledProcedureStepID = ""
    attributes.ScheduledStepAttributesSequence = [item]
    for keyword, value in extra.items():
        setattr(attributes, keyword, value)
    return attributes
