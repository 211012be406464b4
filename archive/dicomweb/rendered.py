"""WADO-RS rendered and thumbnail resources (PS3.18 8.3.5, 8.3.6, 9.5): a frame as image/jpeg or image/png.

The picture comes from `archive.rendering` (modality LUT, VOI window, MONOCHROME1 inversion, color to RGB), the
same pipeline as the portal's thumbnails. A study or series is shown by its middle instance's first frame, an
instance by its first frame.
"""
import io
from dataclasses import dataclass

from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from PIL import Image
from pydicom import dcmread

from archive.dicom_values import valid_uid
from archive.dicomweb.access import dicomweb_endpoint
from archive.models import Instance, Series, Study
from archive.rendering import RenderError, encode_image, render_frame, thumbnail_png
from archive.storage import archive_storage
from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode

RENDERED_MEDIA_TYPES = ("image/jpeg", "image/png")  # the first is the default (PS3.18 8.7.4: image/jpeg)
THUMBNAIL_SIZE = 128
MAX_VIEWPORT = 8192
RENDERED_PARAMETERS = ("window", "viewport", "quality")
THUMBNAIL_PARAMETERS = ("viewport",)


class BadRequest(Exception):
    pass


class NotAcceptable(Exception):
    pass


class NotFound(Exception):
    pass


@dataclass
class Rendering:
    media_type: str
    window: tuple | None = None    # (center, width)
    viewport: tuple | None = None  # (width, height)
    quality: int | None = None


def rendering_options(query, accept, allowed):
    """The media type and parameters of a rendered request (PS3.18 8.3.5.1); BadRequest names the parameter."""
    for key in query:
        if key not in allowed:
            raise BadRequest(f"unknown query parameter {key!r}; supported: {', '.join(allowed)}")
    options = Rendering(media_type=rendered_media_type(accept))
    if "window" in query:
        options.window = _window(query["window"])
    if "viewport" in query:
        options.viewport = _viewport(query["viewport"])
    if "quality" in query:
        options.quality = _quality(query["quality"])
    return options


def rendered_media_type(accept):
    """PS3.18 8.7.4: image/jpeg unless the Accept header prefers image/png; NotAcceptable when it names neither."""
    if not accept or not accept.strip():
        return RENDERED_MEDIA_TYPES[0]
    best, best_quality = None, 0.0
    for media_range in accept.split(","):
        media_type, *parameters = [piece.strip() for piece in media_range.split(";")]
        media_type = media_type.lower()
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        for candidate in RENDERED_MEDIA_TYPES:
            if media_type in (candidate, "image/*", "*/*") and weight > best_quality:
                best, best_quality = candidate, weight
                break
    if best is None:
        raise NotAcceptable(f"cannot render as {accept!r}; available: {', '.join(RENDERED_MEDIA_TYPES)}")
    return best


def _window(value):
    """PS3.18 8.3.5.1.4: window=center,width,function; only the linear VOI function is offered."""
    pieces = [piece.strip() for piece in value.split(",")]
    if len(pieces) != 3:
        raise BadRequest("window must be center,width,function")
    try:
        center, width = float(pieces[0]), float(pieces[1])
    except ValueError:
        raise BadRequest("window center and width must be numbers") from None
    if not width >= 1 or center != center or abs(center) == float("inf") or width == float("inf"):
        raise BadRequest("window width must be a number of at least 1")
    if pieces[2].lower() != "linear":
        raise BadRequest(f"window function {pieces[2]!r} is not supported; use linear")
    return center, width


def _viewport(value):
    """PS3.18 8.3.5.1.3: viewport=vw,vh (the picture is scaled to fit, keeping its aspect ratio). The source
    rectangle form (sx,sy,sw,sh) is not offered."""
    pieces = value.split(",")
    if len(pieces) != 2:
        raise BadRequest("viewport must be width,height (a source rectangle is not supported)")
    try:
        width, height = int(pieces[0]), int(pieces[1])
    except ValueError:
        raise BadRequest("viewport width and height must be whole numbers") from None
    if not (0 < width <= MAX_VIEWPORT and 0 < height <= MAX_VIEWPORT):
        raise BadRequest(f"viewport width and height must be between 1 and {MAX_VIEWPORT}")
    return width, height


def _quality(value):
    """PS3.18 8.3.5.1.2: quality 1 to 100, for lossy media types."""
    try:
        quality = int(value)
    except ValueError:
        raise BadRequest("quality must be a whole number from 1 to 100") from None
    if not 1 <= quality <= 100:
        raise BadRequest("quality must be a whole number from 1 to 100")
    return quality


def find_instance(study, series=None, sop=None):
    """The instance a rendered resource shows: the given one, else the middle instance of the series, else of
    the study's first series that has images. NotFound / BadRequest for unknown or malformed UIDs."""
    for name, uid in (("Study", study), ("Series", series), ("SOP", sop)):
        if uid is not None and not valid_uid(uid):
            raise BadRequest(f"not a valid {name} Instance UID: {uid[:80]!r}")
    try:
        study_row = Study.objects.select_related("patient").get(study_instance_uid=study)
    except Study.DoesNotExist:
        raise NotFound("no such study") from None
    if sop is not None:
        instance = Instance.objects.filter(
            sop_instance_uid=sop, series__series_instance_uid=series, series__study=study_row).first()
        if instance is None:
            raise NotFound("no such instance in this series")
        return study_row, instance
    if series is not None:
        series_rows = Series.objects.filter(series_instance_uid=series, study=study_row)
        if not series_rows.exists():
            raise NotFound("no such series in this study")
    else:
        series_rows = Series.objects.filter(study=study_row).order_by("series_number", "pk")
    for series_row in series_rows:
        images = list(Instance.objects.filter(series=series_row, rows__isnull=False)
                      .order_by("instance_number", "pk").only("pk"))
        if images:
            return study_row, Instance.objects.get(pk=images[len(images) // 2].pk)
    raise NotFound("no image instance to render")


def render_instance(instance, options, frame=0):
    """The encoded picture of one frame (0-based) of `instance`. NotFound for a frame it does not have,
    RenderError when the pixel data cannot be decoded."""
    with archive_storage().open(instance.storage_key) as handle:
        try:
            dataset = dcmread(handle)
        except Exception as exc:  # noqa: BLE001 - the stored file itself cannot be parsed
            raise RenderError(f"cannot read the stored file: {exc}") from exc
        frames = _frame_count(dataset)
        if frame >= frames:
            raise NotFound(f"frame {frame + 1} does not exist: the instance has {frames} frame(s)")
        image = render_frame(dataset, frame=frame, window=options.window, size=options.viewport)
    return _encode(image, options)


def render_thumbnail(instance, options):
    """A small picture of `instance` (PS3.18 8.3.6): the cached 128-pixel thumbnail, or one fitted to the
    requested viewport."""
    if options.viewport is None:
        png = thumbnail_png(instance, size=THUMBNAIL_SIZE)
        if options.media_type == "image/png":
            return png
        return _encode(Image.open(io.BytesIO(png)), options)
    with archive_storage().open(instance.storage_key) as handle:
        try:
            dataset = dcmread(handle)
        except Exception as exc:  # noqa: BLE001
            raise RenderError(f"cannot read the stored file: {exc}") from exc
        image = render_frame(dataset, frame=_frame_count(dataset) // 2, size=options.viewport)
    return _encode(image, options)


def _encode(image, options):
    if options.media_type == "image/jpeg":
        return encode_image(image, "image/jpeg", quality=options.quality or 90)
    return encode_image(image, "image/png")


def _frame_count(dataset):
    try:
        return max(int(dataset.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def _frame_number(frames):
    """PS3.18 8.3.5.1: one frame number per rendered frame request (1-based)."""
    if not frames.isdigit() or int(frames) < 1:
        raise BadRequest(f"frame must be a single frame number from 1: {frames[:40]!r}")
    return int(frames) - 1


def _respond(request, study, series=None, sop=None, frames=None, thumbnail=False):
    try:
        options = rendering_options(request.GET, request.headers.get("Accept", ""),
                                    THUMBNAIL_PARAMETERS if thumbnail else RENDERED_PARAMETERS)
        frame = _frame_number(frames) if frames is not None else 0
        study_row, instance = find_instance(study, series, sop)
        if thumbnail and frames is None:
            content = render_thumbnail(instance, options)
        else:
            if thumbnail:  # one frame's thumbnail: that frame, small
                options.viewport = options.viewport or (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
            content = render_instance(instance, options, frame)
    except BadRequest as exc:
        return _error(400, str(exc))
    except NotFound as exc:
        return _error(404, str(exc))
    except NotAcceptable as exc:
        return _error(406, str(exc))
    except RenderError as exc:
        return _error(422, str(exc))
    record_audit_event(
        AuditEventCode.DICOM_INSTANCES_ACCESSED, action="R", channel=AuditChannel.DICOMWEB,
        actor=request.user.get_username(), user=request.user, source_address=request.META.get("REMOTE_ADDR", ""),
        patient=study_row.patient, object_type="study", object_id=study_row.study_instance_uid,
        resource="thumbnail" if thumbnail else "rendered", sop_instance_uid=instance.sop_instance_uid)
    response = HttpResponse(content, content_type=options.media_type)
    response["Vary"] = "Accept"
    return response


def _error(status, detail):
    return JsonResponse({"detail": detail}, status=status)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def study_rendered(request, study):
    return _respond(request, study)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def series_rendered(request, study, series):
    return _respond(request, study, series)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def instance_rendered(request, study, series, instance):
    return _respond(request, study, series, instance)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def frame_rendered(request, study, series, instance, frames):
    return _respond(request, study, series, instance, frames)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def study_thumbnail(request, study):
    return _respond(request, study, thumbnail=True)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def series_thumbnail(request, study, series):
    return _respond(request, study, series, thumbnail=True)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def instance_thumbnail(request, study, series, instance):
    return _respond(request, study, series, instance, thumbnail=True)


@require_safe
@dicomweb_endpoint("archive.view_instance")
def frame_thumbnail(request, study, series, instance, frames):
    return _respond(request, study, series, instance, frames, thumbnail=True)
