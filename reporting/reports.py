"""The report lifecycle, the one place that writes reports:

    draft → preliminary → final (signed) → amended (by addenda);  draft / preliminary → entered in error

A radiologist starts a report on a case they hold on the reading worklist. Saves carry the version they were
made from; a save from an older version is refused (ReportConflict), so two editors never overwrite each
other. Every save is kept as a ReportVersion. Signing asks for the signer's credentials again (step-up) and
makes the report immutable: later corrections are addenda, signed the same way. The order follows the report
(preliminary, final) through the worklist's state machine; every step is audited.
"""
from django.db import transaction
from django.utils import timezone

from radiology.audit import record_audit_event
from radiology.choices import AuditEventCode, Role
from radiology.step_up import verify_step_up
from reporting import distribution
from reporting.choices import EDITABLE_STATUSES, SIGNED_STATUSES, ReportStatus
from reporting.models import STANDARD_SECTIONS, Report, ReportTemplate, ReportVersion
from worklist import orders, reading
from worklist.choices import READING_STATUSES, OrderStatus


class ReportError(Exception):
    """A report action the rules refuse; the message says why."""


class ReportConflict(ReportError):
    """The report changed since the editor loaded it (optimistic locking)."""


class ReportLocked(ReportError):
    """The report is signed (or entered in error) and can no longer change."""


@transaction.atomic
def start_report(order, user, *, channel, template=None):
    """The order's report, created as a draft from `template` (or the best fitting one) if there is none yet.
    The radiologist must hold the case; an unclaimed case is claimed for them."""
    _check_radiologist(user)
    existing = Report.objects.filter(order=order).first()
    if existing is not None:
        return existing
    if order.status not in READING_STATUSES:
        raise ReportError(f"order {order.accession_number} is {order.get_status_display().lower()}; "
                          f"only orders with images available are reported")
    order = reading.claim(order, user, channel=channel)
    template = template or template_for(order)
    sections = {key: "" for key, _ in STANDARD_SECTIONS}
    fields = {}
    if template is not None:
        for section in template.sections:
            sections[section["key"]] = section.get("default_text", "")
            for field in section.get("fields", []):
                fields[field["key"]] = field.get("default", "")
    if order.reason:
        sections["clinical_information"] = sections.get("clinical_information") or order.reason
    report = Report.objects.create(order=order, template=template, author=user, sections=sections, fields=fields)
    _keep_version(report, user)
    _audit(report, "C", user, channel, status=report.status)
    return report


def template_for(order):
    """The active template for the order's procedure, else one for its modality, else one for anything."""
    procedure = order.procedure
    templates = ReportTemplate.objects.filter(active=True)
    return (templates.filter(procedure=procedure).first()
            or templates.filter(procedure__isnull=True, modality=procedure.modality).first()
            or templates.filter(procedure__isnull=True, modality="").first())


@transaction.atomic
def save_draft(report, user, *, version, sections=None, fields=None, channel):
    """Save the editor's text. `version` is the report version the editor started from."""
    report = _locked_for_edit(report, user, version)
    if sections is not None:
        unknown = set(sections) - set(report.sections)
        if unknown:
            raise ReportError(f"unknown report sections: {', '.join(sorted(unknown))}")
        report.sections = {**report.sections, **{key: str(text) for key, text in sections.items()}}
    if fields is not None:
        report.fields = {**report.fields, **fields}
    return _save(report, user, channel, "saved")


@transaction.atomic
def make_preliminary(report, user, *, version, channel):
    """Release the report as preliminary (still editable; the clinician sees it marked so)."""
    report = _locked_for_edit(report, user, version)
    if report.status != ReportStatus.DRAFT:
        raise ReportError("only a draft can become preliminary")
    _require_text(report)
    report.status, report.preliminary_at = ReportStatus.PRELIMINARY, timezone.now()
    report = _save(report, user, channel, "preliminary")
    report.order = orders.change_status(report.order, OrderStatus.PRELIMINARY, actor=user.get_username(),
                                        channel=channel, user=user)
    return report


@transaction.atomic
def sign(report, user, *, version, password, channel):
    """Sign the report: it becomes final and never changes again. Needs the signer's credentials again."""
    report = _locked_for_edit(report, user, version)
    verify_step_up(user, password)
    _require_text(report)
    report.status, report.signed_by, report.signed_at = ReportStatus.FINAL, user, timezone.now()
    report = _save(report, user, channel, "signed")
    report.order = orders.change_status(report.order, OrderStatus.FINAL, actor=user.get_username(),
                                        channel=channel, user=user)
    distribution.report_released(report)
    return report


@transaction.atomic
def add_addendum(report, user, *, text, password, channel):
    """Add a signed addendum to a final report; the report as signed stays visible and unchanged."""
    _check_radiologist(user)
    report = Report.objects.select_for_update().get(pk=report.pk)
    if report.status not in SIGNED_STATUSES:
        raise ReportError("addenda are added to final reports; edit the draft instead")
    text = (text or "").strip()
    if not text:
        raise ReportError("an addendum needs text")
    verify_step_up(user, password)
    addendum = report.addenda.create(author=user, text=text, signed_at=timezone.now())
    if report.status != ReportStatus.AMENDED:
        report.status = ReportStatus.AMENDED
        report.save(update_fields=["status", "updated_at"])
    _audit(report, "U", user, channel, status=report.status, addendum=addendum.pk)
    distribution.report_released(report)
    return addendum


@transaction.atomic
def mark_entered_in_error(report, user, *, reason, channel):
    """Withdraw an unsigned report written on the wrong order; it stays in the record with the reason."""
    report = Report.objects.select_for_update().get(pk=report.pk)
    if report.status not in EDITABLE_STATUSES:
        raise ReportLocked("a signed report cannot be withdrawn; add an addendum instead")
    if report.author_id != user.pk and not user.groups.filter(name=Role.ADMINISTRATOR).exists():
        raise ReportError("only the author or an administrator withdraws a report")
    if not (reason or "").strip():
        raise ReportError("say why the report is entered in error")
    report.status, report.cancelled_reason = ReportStatus.ENTERED_IN_ERROR, reason.strip()
    return _save(report, user, channel, "entered in error")


def full_text(report):
    """The report as plain text: the sections in order, each with its text and its template fields that have a
    value ("Size: 12 mm"), then the addenda."""
    titles = dict(STANDARD_SECTIONS)
    fields_by_section = {}
    for section in (report.template.sections if report.template else []):
        titles.setdefault(section["key"], section.get("title", section["key"]))
        fields_by_section[section["key"]] = section.get("fields", [])
    parts = []
    for key, text in report.sections.items():
        lines = [str(text).strip()] if str(text).strip() else []
        for field in fields_by_section.get(key, []):
            value = report.fields.get(field["key"])
            if value not in (None, ""):
                lines.append(f"{field['label']}: {value}{' ' + field['unit'] if field.get('unit') else ''}")
        if lines:
            parts.append(f"{titles.get(key, key.replace('_', ' ').capitalize()).upper()}:\n" + "\n".join(lines))
    parts += [f"ADDENDUM ({addendum.signed_at:%Y-%m-%d %H:%M}, {addendum.author.get_full_name()}):\n{addendum.text}"
              for addendum in report.addenda.all()]
    return "\n\n".join(parts)


# ---------------------------------------------------------------------------------------------------------

def _locked_for_edit(report, user, version):
    report = Report.objects.select_for_update().select_related("order").get(pk=report.pk)
    if report.status not in EDITABLE_STATUSES:
        raise ReportLocked(f"the report is {report.get_status_display().lower()} and cannot be changed; "
                           f"corrections are addenda")
    if report.author_id != user.pk:
        raise ReportError(f"the report is being written by {report.author.get_full_name() or report.author}")
    if int(version) != report.version:
        raise ReportConflict(f"the report was saved elsewhere (version {report.version}, yours {version}); "
                             f"reload it to see the changes")
    return report


def _save(report, user, channel, what):
    report.version += 1
    report.save()
    _keep_version(report, user)
    _audit(report, "U", user, channel, status=report.status, version=report.version, what=what)
    return report


def _keep_version(report, user):
    ReportVersion.objects.create(report=report, version=report.version, status=report.status,
                                 sections=report.sections, fields=report.fields, saved_by=user,
                                 saved_at=timezone.now())


def _require_text(report):
    if not any(str(text).strip() for text in report.sections.values()):
        raise ReportError("the report is empty")


def _check_radiologist(user):
    if not user.groups.filter(name=Role.RADIOLOGIST).exists():
        raise ReportError("only radiologists write reports")


def _audit(report, action, user, channel, **detail):
    record_audit_event(AuditEventCode.PROCEDURE_RECORD, action=action, channel=channel, actor=user.get_username(),
                       user=user, patient=report.order.patient, object_type="report",
                       object_id=report.order.accession_number, **detail)
