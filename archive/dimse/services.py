"""DICOM services that other apps add to the archive's listener, so that one listener on one port serves them
without the archive importing those apps (the worklist adds Modality Worklist FIND and MPPS this way).

An app registers a DimseService from its AppConfig.ready(). The listener accepts the service's SOP classes
(uncompressed transfer syntaxes) and routes each request to the service's handler for that event by the SOP
class it names: C-FIND through the archive's own C-FIND handler (pynetdicom binds one handler per event),
N-CREATE and N-SET through `dispatch`. Handlers are written as pynetdicom documents them for the event.

A service may also vouch for calling AE titles the archive does not know (`knows_calling_ae`): the worklist's
modalities are Stations, not DicomNodes. The listener then accepts their associations; each handler still
decides what such a peer may do (the archive's own handlers refuse AEs that are not registered nodes).
"""
from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pynetdicom import evt

# PS3.7 C.5: the SOP class named in the request is not one we serve.
SOP_CLASS_NOT_SUPPORTED = 0x0122
# Events a service may handle; the listener binds `dispatch` to the N- ones.
SERVICE_EVENTS = (evt.EVT_C_FIND, evt.EVT_N_CREATE, evt.EVT_N_SET)
N_EVENTS = (evt.EVT_N_CREATE, evt.EVT_N_SET)


@dataclass(frozen=True)
class DimseService:
    name: str
    sop_classes: tuple
    handlers: dict = field(default_factory=dict)  # one of SERVICE_EVENTS -> handler
    # calling AE title -> whether this service serves it; consulted for AEs that are not registered DicomNodes.
    knows_calling_ae: Callable[[str], bool] | None = None


_services = {}


def register_service(service):
    unknown = set(service.handlers) - set(SERVICE_EVENTS)
    if unknown:
        raise ValueError(f"DICOM service {service.name}: cannot handle {', '.join(e.name for e in unknown)}")
    _services[service.name] = service


def registered_services():
    return list(_services.values())


def knows_calling_ae(ae_title):
    """Whether a registered service vouches for this calling AE title (see DimseService.knows_calling_ae)."""
    return any(service.knows_calling_ae(ae_title) for service in _services.values()
               if service.knows_calling_ae is not None)


def handler_for(event_type, sop_class_uid):
    for service in _services.values():
        if sop_class_uid in service.sop_classes and event_type in service.handlers:
            return service.handlers[event_type]
    return None


def dispatch(event):
    """The listener's handler for N-CREATE and N-SET: the registered service's, or "SOP class not supported"."""
    request = event.request
    sop_class_uid = getattr(request, "AffectedSOPClassUID", None) or getattr(request, "RequestedSOPClassUID", None)
    handler = handler_for(event.event, sop_class_uid)
    if handler is None:
        return SOP_CLASS_NOT_SUPPORTED, None
    return handler(event)


# ---------------------------------------------------------------------------------------------------------
# What every service handler needs from a request (the archive's Q/R handlers use them too)

def failure(code, comment):
    """A failure status data set with its Error Comment (at most 64 characters, PS3.7 C.4)."""
    dataset = Dataset()
    dataset.Status = code
    dataset.ErrorComment = comment[:64]
    return dataset


def ae_text(value):
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return (value or "").strip()


def calling_ae(event):
    return ae_text(event.assoc.requestor.ae_title)


def peer_address(event):
    try:
        return event.assoc.requestor.address
    except AttributeError:
        return ""
