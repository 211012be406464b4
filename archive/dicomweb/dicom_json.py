"""The DICOM JSON model (PS3.18 F.2): `application/dicom+json` from pydicom datasets and stored headers.

Rules that matter to clients (PS3.18 F.2.2-F.2.7):
- every attribute is keyed by its tag as eight upper-case hex digits and carries its "vr";
- PN values are objects with "Alphabetic" (and "Ideographic", "Phonetic" when present) components;
- IS, DS and the binary numeric VRs are JSON numbers, AT values hex tag strings;
- an attribute without a value has no "Value" member at all (F.2.5);
- large values are references: "BulkDataURI" with an absolute URL the client can retrieve (F.2.6).
"""
import json

from django.http import HttpResponse

MEDIA_TYPE = "application/dicom+json"

# The DICOMweb root, as included by radiology/urls.py; every resource URL in a response is built from it.
DICOMWEB_PREFIX = "/dicomweb"

# Elements that only steer a DIMSE query or describe its encoding: never part of a DICOM JSON object
# (JSON is always UTF-8, PS3.18 F.2).
_DIMSE_ONLY = {0x00080005, 0x00080052, 0x00080054}


def base_url(request):
    """The absolute URL of the DICOMweb root for this request, e.g. `https://pacs.example/dicomweb`."""
    return request.build_absolute_uri(DICOMWEB_PREFIX)


def study_url(base, study_uid):
    return f"{base}/studies/{study_uid}"


def series_url(base, study_uid, series_uid):
    return f"{study_url(base, study_uid)}/series/{series_uid}"


def instance_url(base, study_uid, series_uid, sop_uid):
    return f"{series_url(base, study_uid, series_uid)}/instances/{sop_uid}"


def dataset_to_json(dataset):
    """A pydicom Dataset as a DICOM JSON object (dict keyed by tag). Query control elements are left out."""
    for tag in _DIMSE_ONLY & set(int(tag) for tag in dataset.keys()):
        del dataset[tag]
    return dict(sorted(_fix_numbers(dataset.to_json_dict(suppress_invalid_tags=True)).items()))


def _fix_numbers(json_dataset):
    # pydicom keeps an IS or DS value that is not a valid number as a string; PS3.18 F.2.3 wants JSON numbers,
    # so such a value is dropped rather than sent as a string that strict clients reject.
    for element in json_dataset.values():
        vr = element.get("vr")
        values = element.get("Value")
        if values is None:
            continue
        if vr in ("IS", "DS"):
            numbers = [value for value in values if value is None or isinstance(value, (int, float))]
            if len(numbers) != len(values):
                element.pop("Value")
        elif vr == "SQ":
            for item in values:
                _fix_numbers(item)
    return json_dataset


def inline_header(header):
    """The stored header without the attributes kept as bulk data references (for search results)."""
    return {tag: element for tag, element in (header or {}).items() if "BulkDataURI" not in element}


def dicom_json_response(objects, status=200, **headers):
    """An `application/dicom+json` response with a list of DICOM JSON objects."""
    response = HttpResponse(json.dumps(objects, ensure_ascii=False, separators=(",", ":")),
                            content_type=f"{MEDIA_TYPE}; charset=utf-8", status=status)
    for name, value in headers.items():
        response[name] = value
    return response
