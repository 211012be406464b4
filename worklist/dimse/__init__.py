"""The worklist's DICOM services, served by the archive's listener on its port (archive/dimse/services.py):

modality_worklist.py: Modality Worklist Information Model FIND (PS3.4 K.6), the modalities' worklist;
mpps.py: Modality Performed Procedure Step N-CREATE / N-SET (PS3.4 F.7), the procedures' progress.

Who may use them: any calling AE when RADIOLOGY_DICOM_OPEN is set; otherwise an active Station (the admin's
rooms: modalities need no DicomNode of their own), or a registered DicomNode allowed to query (worklist) or to
store (performed procedure steps). The listener accepts associations from stations because this package's
services say it knows them (`knows_calling_ae`).
"""
from django.conf import settings
from pynetdicom import evt
from pynetdicom.sop_class import ModalityPerformedProcedureStep, ModalityWorklistInformationFind

from archive.dimse.services import DimseService, register_service
from worklist.models import Station


def is_station(ae_title):
    """Whether `ae_title` is an active station's (a modality that asks for its worklist and reports steps)."""
    return Station.objects.filter(ae_title=(ae_title or "").strip(), active=True).exists()


def may_query_worklist(ae_title):
    from archive.dimse.listener import node_for

    if settings.DICOM_OPEN or is_station(ae_title):
        return True
    node = node_for(ae_title)
    return node is not None and node.allow_query


def may_report_procedure_steps(ae_title):
    from archive.dimse.listener import node_for

    if settings.DICOM_OPEN or is_station(ae_title):
        return True
    node = node_for(ae_title)
    return node is not None and node.allow_store


def register_services():
    """Called from WorklistConfig.ready(): add Modality Worklist FIND and MPPS to the archive's listener."""
    from worklist.dimse import modality_worklist, mpps

    register_service(DimseService(
        name="modality-worklist", sop_classes=(ModalityWorklistInformationFind,),
        handlers={evt.EVT_C_FIND: modality_worklist.handle_find}, knows_calling_ae=is_station))
    register_service(DimseService(
        name="modality-performed-procedure-step", sop_classes=(ModalityPerformedProcedureStep,),
        handlers={evt.EVT_N_CREATE: mpps.handle_create, evt.EVT_N_SET: mpps.handle_set},
        knows_calling_ae=is_station))
