"""WADO-RS (PS3.18 10.4: instances, metadata, frames, bulkdata) and WADO-URI (PS3.18 9) retrieval.

Instances are served as stored (their stored transfer syntax) unless the client asks for Explicit VR Little
Endian, which is produced by decoding; frames are served uncompressed, or in their stored compressed form when
the Accept header names it. Every request is one audit event."""
import copy
import gzip
import hashlib
import io
import json
import re

from django.core.cache import cache
from django.http import FileResponse, HttpResponse, JsonResponse
from django.utils.http import http_date
from django.views.decorators.http import require_safe
from pydicom import dcmread
from pydicom.encaps import generate_frames
from pydicom.pixels import get_decoder, pack_bits, pixel_array
from pydicom.uid import UID, ExplicitVRLittleEndian

from archive.dicom_values import valid_uid
from archive.dicomweb.access import dicomweb_endpoint
from archive.dicomweb.dicom_json import base_url, instance_url
from archive.dicomweb.multipart import Part, file_chunks, multipart_response
from archive.models import Instance, Study
from archive.rendering import RenderError, encode_image, render_frame
from archive.storage import archive_storage
from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode

EXPLICIT_VR_LITTLE_ENDIAN = str(ExplicitVRLittleEndian)
BIG_ENDIAN = "1.2.840.10008.1.2.2"
# PS3.18 Table 8.7.3-2/-3: media types of single frames in each compressed transfer syntax.
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": ("image/jpeg",),
    "1.2.840.10008.1.2.4.51": ("image/jpeg",),
    "1.2.840.10008.1.2.4.57": ("image/jpeg",),
    "1.2.840.10008.1.2.4.70": ("image/jpeg",),
    "1.2.840.10008.1.2.4.80": ("image/jls", "image/x-jls"),
    "1.2.840.10008.1.2.4.81": ("image/jls", "image/x-jls"),
    "1.2.840.10008.1.2.4.90": ("image/jp2",),
    "1.2.840.10008.1.2.4.91": ("image/jp2",),
    "1.2.840.10008.1.2.4.92": ("image/jpx",),
    "1.2.840.10008.1.2.4.93": ("image/jpx",),
    "1.2.840.10008.1.2.5": ("image/dicom-rle", "image/x-dicom-rle"),
}
_FRAME_LIST = re.compile(r"^[1-9][0-9]{0,8}(,[1-9][0-9]{0,8})*$")
_TAG_PATH = re.compile(r"^[0-9A-Fa-f]{8}(/[0-9]{1,6}/[0-9A-Fa-f]{8})*$")
_PIXEL_DATA = "7FE00010"
METADATA_CACHE_SECONDS = 3600


class NotAcceptable(Exception):
    pass


# Views ------------------------------------------------------------------------------------------------------

@require_safe
@dicomweb_endpoint("archive.view_instance")
def retrieve_study(request, study):
    return _retrieve_instances(request, study)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def retrieve_series(request, study, series):
    return _retrieve_instances(request, study, series)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def retrieve_instance(request, study, series, instance):
    return _retrieve_instances(request, study, series, instance)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def study_metadata(request, study):
    return _metadata(request, study)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def series_metadata(request, study, series):
    return _metadata(request, study, series)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def instance_metadata(request, study, series, instance):
    return _metadata(request, study, series, instance)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def retrieve_frames(request, study, series, instance, frames):
    """PS3.18 10.4.1.1.5: frames of one instance, one part each, in the order asked."""
    if not _FRAME_LIST.match(frames):
        return _error(400, f"malformed frame list {frames[:64]!r}: expected numbers from 1, comma separated")
    found = _find(study, series, instance)
    if isinstance(found, HttpResponse):
        return found
    study_row, instances = found
    instance_row = instances[0]
    numbers = [int(number) for number in frames.split(",")]
    available = instance_row.number_of_frames or (1 if instance_row.rows else 0)
    missing = [number for number in numbers if number > available]
    if missing:
        return _error(404, f"frame {missing[0]} does not exist: the instance has {available} frame(s)")
    stored = instance_row.transfer_syntax_uid
    try:
        form, part_type = _frame_form(request.headers.get("Accept", ""), stored)
    except NotAcceptable as exc:
        return _error(406, str(exc))
    _audit(request, study_row, "frames", len(instances), sop_instance_uid=instance_row.sop_instance_uid,
           frames=numbers)
    location = _instance_url(request, instance_row)
    if form == "stored":
        parts = (Part(f"{part_type}; transfer-syntax={stored}", [content], f"{location}/frames/{number}")
                 for number, content in _stored_frames(instance_row, numbers))
        return multipart_response(request, parts, part_type, transfer_syntax=stored)
    parts = (Part("application/octet-stream", [content], f"{location}/frames/{number}")
             for number, content in _native_frames(instance_row, numbers))
    return multipart_response(request, parts, "application/octet-stream", transfer_syntax=EXPLICIT_VR_LITTLE_ENDIAN)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def retrieve_bulkdata(request, study, series, instance, tag_path):
    """PS3.18 10.4.1.1.4: the value behind a BulkDataURI of the metadata, as application/octet-stream."""
    if not _TAG_PATH.match(tag_path):
        return _error(400, f"malformed bulk data path {tag_path[:64]!r}")
    found = _find(study, series, instance)
    if isinstance(found, HttpResponse):
        return found
    study_row, instances = found
    instance_row = instances[0]
    tag_path = tag_path.upper()
    if tag_path == _PIXEL_DATA:
        if not instance_row.rows:
            return _error(404, "the instance has no pixel data")
        try:
            form, part_type = _frame_form(request.headers.get("Accept", ""), instance_row.transfer_syntax_uid)
        except NotAcceptable as exc:
            return _error(406, str(exc))
        numbers = list(range(1, (instance_row.number_of_frames or 1) + 1))
        _audit(request, study_row, "bulkdata", 1, sop_instance_uid=instance_row.sop_instance_uid, tag=tag_path)
        if form == "stored":
            stored = instance_row.transfer_syntax_uid
            parts = (Part(f"{part_type}; transfer-syntax={stored}", [content])
                     for _, content in _stored_frames(instance_row, numbers))
            return multipart_response(request, parts, part_type, transfer_syntax=stored)
        content = (content for _, content in _native_frames(instance_row, numbers))
        return multipart_response(request, [Part("application/octet-stream", content)], "application/octet-stream")
    value = _element_value(instance_row, tag_path)
    if value is None:
        return _error(404, f"no bulk data at {tag_path}")
    _audit(request, study_row, "bulkdata", 1, sop_instance_uid=instance_row.sop_instance_uid, tag=tag_path)
    return multipart_response(request, [Part("application/octet-stream", [value])], "application/octet-stream")


@require_safe
@dicomweb_endpoint("archive.view_instance")
def wado_uri(request):
    """PS3.18 9: `/wado?requestType=WADO&studyUID=&seriesUID=&objectUID=` with contentType application/dicom
    (the stored file) or image/jpeg (the default, PS3.18 9.1.2.1.4), with frameNumber, windowCenter/Width,
    rows/columns."""
    query = request.GET
    if query.get("requestType") != "WADO":
        return _error(400, "requestType must be WADO")
    for key in ("studyUID", "seriesUID", "objectUID"):
        if not query.get(key):
            return _error(400, f"{key} is required")
    found = _find(query["studyUID"], query["seriesUID"], query["objectUID"])
    if isinstance(found, HttpResponse):
        return found
    study_row, instances = found
    instance_row = instances[0]
    content_type = query.get("contentType", "image/jpeg").split(",")[0].strip()
    if content_type == "application/dicom":
        _audit(request, study_row, "wado-uri", 1, sop_instance_uid=instance_row.sop_instance_uid)
        response = FileResponse(archive_storage().open(instance_row.storage_key), content_type="application/dicom")
        response["Content-Length"] = str(instance_row.file_size)
        return response
    if content_type not in ("image/jpeg", "image/png"):
        return _error(406, f"unsupported contentType {content_type!r}: application/dicom or image/jpeg")
    try:
        frame = int(query.get("frameNumber", "1")) - 1
        if frame < 0:
            raise ValueError("frameNumber counts from 1")
        window = None
        if "windowCenter" in query or "windowWidth" in query:
            window = (float(query["windowCenter"]), float(query["windowWidth"]))
            if window[1] <= 0:
                raise ValueError("windowWidth must be positive")
        size = None
        if "rows" in query or "columns" in query:
            size = (int(query.get("columns", query.get("rows"))), int(query.get("rows", query.get("columns"))))
            if min(size) < 1:
                raise ValueError("rows and columns must be positive")
    except (KeyError, ValueError) as exc:
        return _error(400, f"bad rendering parameters: {exc}")
    try:
        with archive_storage().open(instance_row.storage_key) as source:
            image = render_frame(dcmread(source), frame=frame, window=window, size=size)
    except RenderError as exc:
        return _error(406, f"cannot render the instance: {exc}")
    _audit(request, study_row, "wado-uri", 1, sop_instance_uid=instance_row.sop_instance_uid)
    return HttpResponse(encode_image(image, content_type), content_type=content_type)


# Instances --------------------------------------------------------------------------------------------------

def _retrieve_instances(request, study, series=None, instance=None):
    """PS3.18 10.4.1.1.1-3: the Part 10 files of a study, series or instance, one part each."""
    found = _find(study, series, instance)
    if isinstance(found, HttpResponse):
        return found
    study_row, instances = found
    try:
        transcode = _instance_form(request.headers.get("Accept", ""), instances)
    except NotAcceptable as exc:
        return _error(406, str(exc))
    _audit(request, study_row, "instances", len(instances), series_instance_uid=series or "",
           sop_instance_uid=instance or "")
    if transcode:
        parts = (Part(f"application/dicom; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}",
                      _explicit_little_endian(row), _instance_url(request, row)) for row in instances)
        return multipart_response(request, parts, "application/dicom", transfer_syntax=EXPLICIT_VR_LITTLE_ENDIAN)
    storage = archive_storage()
    syntaxes = {row.transfer_syntax_uid for row in instances}
    parts = (Part(f"application/dicom; transfer-syntax={row.transfer_syntax_uid}",
                  file_chunks(lambda key=row.storage_key: storage.open(key)), _instance_url(request, row))
             for row in instances)
    return multipart_response(request, parts, "application/dicom",
                              transfer_syntax=syntaxes.pop() if len(syntaxes) == 1 else "*")


def _instance_form(accept, instances):
    """True to transcode to Explicit VR Little Endian, False to send as stored; NotAcceptable otherwise.
    PS3.18 8.7.3.5.2: `transfer-syntax=*` means as stored; without a transfer syntax we also send as stored, so
    that nothing is decoded unless a client asks for it."""
    stored = {row.transfer_syntax_uid for row in instances}
    for media_type, params in _media_ranges(accept):
        if not _acceptable(media_type, params, "application/dicom"):
            continue
        syntax = params.get("transfer-syntax")
        if syntax in (None, "*") or {syntax} == stored:
            return False
        if syntax == EXPLICIT_VR_LITTLE_ENDIAN and all(_transcodable(uid) for uid in stored):
            return True
    raise NotAcceptable("the instances cannot be sent in any of the accepted media types and transfer syntaxes "
                        f"(stored as {', '.join(sorted(stored))})")


def _transcodable(transfer_syntax_uid):
    uid = UID(transfer_syntax_uid)
    if transfer_syntax_uid == BIG_ENDIAN:
        return False  # pydicom does not rewrite big endian data as little endian
    if not uid.is_compressed:
        return True
    try:
        return get_decoder(uid).is_available
    except (NotImplementedError, ValueError):
        # pydicom's public answer for a transfer syntax it has no decoder for at all.
        return False


def _explicit_little_endian(row):
    """One instance as Explicit VR Little Endian, compressed pixel data decoded (whole instance in memory)."""
    with archive_storage().open(row.storage_key) as source:
        dataset = dcmread(source)
    if dataset.file_meta.TransferSyntaxUID.is_compressed:
        # Same SOP Instance UID, as C-GET does for peers that accept uncompressed only: the same instance.
        dataset.decompress(generate_instance_uid=False)
    else:
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    yield buffer.getvalue()


# Frames and bulk data ---------------------------------------------------------------------------------------

def _frame_form(accept, stored):
    """("stored", media type) to send frames as stored compressed bitstreams, ("native", octet-stream) to send
    them uncompressed (PS3.18 8.7.3.3.2), or NotAcceptable."""
    compressed = stored in FRAME_MEDIA_TYPES
    for media_type, params in _media_ranges(accept):
        syntax = params.get("transfer-syntax")
        if _acceptable(media_type, params, "application/octet-stream"):
            if compressed and syntax in ("*", stored):
                return "stored", "application/octet-stream"
            if syntax in (None, "*", EXPLICIT_VR_LITTLE_ENDIAN) and (not compressed or _transcodable(stored)):
                return "native", "application/octet-stream"
        elif compressed and params.get("type", media_type) in FRAME_MEDIA_TYPES[stored] and syntax in (None, "*",
                                                                                                       stored):
            return "stored", params.get("type", media_type)
    raise NotAcceptable(f"the frames cannot be sent in any of the accepted media types (stored as {stored})")


def _stored_frames(row, numbers):
    """(number, compressed bitstream) of the asked frames, extracted from the encapsulated pixel data."""
    dataset = _read(row)
    frames = list(generate_frames(dataset.PixelData, number_of_frames=row.number_of_frames or 1))
    for number in numbers:
        yield number, frames[number - 1]


def _native_frames(row, numbers):
    """(number, uncompressed little endian bytes) of the asked frames; compressed data is decoded per frame."""
    dataset = _read(row)
    syntax = dataset.file_meta.TransferSyntaxUID
    bits = int(dataset.BitsAllocated)
    frame_bytes = int(dataset.Rows) * int(dataset.Columns) * int(dataset.get("SamplesPerPixel", 1)) * bits // 8
    for number in numbers:
        if not syntax.is_compressed and syntax != BIG_ENDIAN and bits % 8 == 0:
            offset = (number - 1) * frame_bytes
            yield number, dataset.PixelData[offset:offset + frame_bytes]
            continue
        pixels = pixel_array(dataset, index=number - 1)
        if bits == 1:
            yield number, pack_bits(pixels)
        else:
            yield number, pixels.astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()


def _element_value(row, tag_path):
    """The raw value at `tag_path` (TAG or SEQTAG/ITEM/TAG...) of the stored instance, or None."""
    dataset = _read(row)
    steps = tag_path.split("/")
    for sequence_tag, item in zip(steps[0:-1:2], steps[1:-1:2]):
        element = dataset.get(int(sequence_tag, 16))
        if element is None or element.VR != "SQ" or int(item) >= len(element.value):
            return None
        dataset = element.value[int(item)]
    element = dataset.get(int(steps[-1], 16))
    if element is None or element.VR == "SQ" or element.value is None:
        return None
    # Ingest makes BulkDataURIs of binary values only (pydicom's bulk data threshold applies to them).
    return element.value if isinstance(element.value, bytes) else None


def _read(row):
    with archive_storage().open(row.storage_key) as source:
        return dcmread(source)


# Metadata ---------------------------------------------------------------------------------------------------

def _metadata(request, study, series=None, instance=None):
    """PS3.18 10.4.1.2: the DICOM JSON of each instance, from the header stored at ingest, with absolute
    BulkDataURIs; ETag and Last-Modified let a viewer revalidate instead of downloading again."""
    found = _find(study, series, instance)
    if isinstance(found, HttpResponse):
        return found
    study_row, instances = found
    base = request.build_absolute_uri("/")
    digest = hashlib.sha256(f"metadata-v1 {base}".encode())
    for row in instances:
        digest.update(f"{row.sop_instance_uid}:{row.sha256};".encode())
    etag = f'"{digest.hexdigest()[:32]}"'
    last_modified = http_date(max(row.received_at for row in instances).timestamp())
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponse(status=304)
    else:
        _audit(request, study_row, "metadata", len(instances), series_instance_uid=series or "",
               sop_instance_uid=instance or "")
        body, zipped = _metadata_bodies(request, etag, study_row, series, instance)
        if _accepts_gzip(request):
            response = HttpResponse(zipped, content_type="application/dicom+json")
            response["Content-Encoding"] = "gzip"
        else:
            response = HttpResponse(body, content_type="application/dicom+json")
    response["ETag"] = etag
    response["Last-Modified"] = last_modified
    response["Vary"] = "Accept-Encoding"
    return response


def _metadata_bodies(request, etag, study_row, series, instance):
    """The JSON body and its gzip form, kept in the cache under the ETag: the ETag changes whenever an instance
    is added, replaced or removed (and with the host the URIs name), so a cached body is never stale."""
    key = f"dicomweb-metadata:{etag}"
    bodies = cache.get(key)
    if bodies is None:
        rows = _instances(study_row, series, instance)
        body = json.dumps([_instance_metadata(request, row) for row in rows], separators=(",", ":")).encode()
        bodies = body, gzip.compress(body, compresslevel=5)
        cache.set(key, bodies, METADATA_CACHE_SECONDS)
    return bodies


def _instance_metadata(request, row):
    header = copy.deepcopy(row.header)
    prefix = f"{_instance_url(request, row)}/bulkdata/"
    _absolute_bulkdata_uris(header, prefix, "")
    if row.rows and _PIXEL_DATA not in header:
        # The header was read without pixel data; PS3.18 F.2.7 the pixel data is referenced as bulk data.
        bits = (header.get("00280100", {}).get("Value") or [16])[0]
        vr = "OW" if row.transfer_syntax_uid not in FRAME_MEDIA_TYPES and bits > 8 else "OB"
        header[_PIXEL_DATA] = {"vr": vr, "BulkDataURI": prefix + _PIXEL_DATA}
    return header


def _absolute_bulkdata_uris(attributes, prefix, path):
    """Ingest names bulk data by tag only; here nested ones get their sequence path (SEQ/ITEM/TAG) too."""
    for tag, attribute in attributes.items():
        if "BulkDataURI" in attribute:
            attribute["BulkDataURI"] = prefix + path + tag
        elif attribute.get("vr") == "SQ":
            for index, item in enumerate(attribute.get("Value") or []):
                _absolute_bulkdata_uris(item, prefix, f"{path}{tag}/{index}/")


def _accepts_gzip(request):
    for coding in request.headers.get("Accept-Encoding", "").split(","):
        name, _, params = coding.strip().partition(";")
        if name.strip().lower() == "gzip" and params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00"):
            return True
    return False


# Shared -----------------------------------------------------------------------------------------------------

def _find(study, series=None, instance=None):
    """(study, instances in series/instance number order) for the UIDs in the URL, or a 400/404 response."""
    for name, uid in (("study", study), ("series", series), ("SOP instance", instance)):
        if uid is not None and not valid_uid(uid):
            return _error(400, f"malformed {name} UID {uid[:80]!r}")
    study_row = Study.objects.select_related("patient").filter(study_instance_uid=study).first()
    if study_row is None:
        return _error(404, f"no study {study}")
    instances = list(_instances(study_row, series, instance).defer("header"))
    if not instances:
        what = f"SOP instance {instance}" if instance else f"series {series}" if series else "instances"
        return _error(404, f"no {what} in study {study}" if series else f"no instances in study {study}")
    return study_row, instances


def _instances(study_row, series=None, instance=None):
    instances = Instance.objects.filter(series__study=study_row).select_related("series__study")
    if series is not None:
        instances = instances.filter(series__series_instance_uid=series)
    if instance is not None:
        instances = instances.filter(sop_instance_uid=instance)
    return instances.order_by("series__series_number", "series__pk", "instance_number", "pk")


def _media_ranges(accept):
    """The Accept header as (media type, parameters) in the order given; an empty header accepts anything."""
    ranges = []
    for item in re.findall(r'(?:[^,"]|"[^"]*")+', accept or "*/*"):
        media_type, *params = [piece.strip() for piece in re.findall(r'(?:[^;"]|"[^"]*")+', item)]
        values = {}
        for param in params:
            name, _, value = param.partition("=")
            values[name.strip().lower()] = value.strip().strip('"')
        ranges.append((media_type.lower(), values))
    return ranges


def _acceptable(media_type, params, part_type):
    if media_type in ("*/*", "multipart/*"):
        return params.get("type", part_type) in (part_type, "*/*")
    if media_type == "multipart/related":
        return params.get("type", part_type) in (part_type, "*/*")
    return media_type == part_type


def _instance_url(request, row):
    return instance_url(base_url(request), row.series.study.study_instance_uid, row.series.series_instance_uid,
                        row.sop_instance_uid)


def _audit(request, study, resource, count, **detail):
    record_audit_event(
        AuditEventCode.DICOM_INSTANCES_ACCESSED, action="R", channel=AuditChannel.DICOMWEB,
        actor=request.user.get_username(), user=request.user, source_address=request.META.get("REMOTE_ADDR", ""),
        patient=study.patient, object_type="study", object_id=study.study_instance_uid, resource=resource,
        instances=count, **detail)


def _error(status, detail):
    return JsonResponse({"detail": detail}, status=status)
