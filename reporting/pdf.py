"""The PDF of a signed report (weasyprint): a header with the patient and the order, the report's sections, the
addenda in the order they were signed, and the signature block.

Rendered when asked for, from the report as signed and its addenda, which never change: every copy of a report
at a given point in its life is the same document. Key images are not included yet: the platform has no key
image selection (a Key Object Selection model) to take them from.

weasyprint needs Pango and HarfBuzz from the system (Debian: libpango-1.0-0, libpangoft2-1.0-0,
libharfbuzz-subset0; `.ci/run` installs them). Without them, asking for a PDF fails with PdfUnavailable, which
says what to install; nothing else in the platform is affected, since weasyprint is imported only here, on use.
"""
from django.template.loader import render_to_string
from django.utils import timezone

from reporting.choices import SIGNED_STATUSES
from reporting.models import STANDARD_SECTIONS

SYSTEM_LIBRARIES = "libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0"


class PdfUnavailable(Exception):
    """PDF rendering cannot run on this machine; the message says what is missing."""


class NotSigned(Exception):
    """Only signed reports have a PDF."""


def render_report_pdf(report):
    """The report as PDF bytes."""
    if report.status not in SIGNED_STATUSES:
        raise NotSigned(f"the report is {report.get_status_display().lower()}; a PDF is made of signed reports")
    html = render_report_html(report)
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:
        raise PdfUnavailable(f"PDF rendering needs weasyprint and the system libraries {SYSTEM_LIBRARIES} "
                             f"(apt-get install {SYSTEM_LIBRARIES}): {exc}") from exc
    return HTML(string=html).write_pdf()


def render_report_html(report):
    """The HTML that becomes the PDF (every value escaped by the template engine)."""
    order = report.order
    titles = dict(STANDARD_SECTIONS)
    order_of_sections = [key for key, _ in STANDARD_SECTIONS]
    keys = sorted(report.sections, key=lambda key: order_of_sections.index(key)
                  if key in order_of_sections else len(order_of_sections))
    sections = [{"title": titles.get(key, key.replace("_", " ").capitalize()),
                 "text": str(report.sections[key]).strip()}
                for key in keys if str(report.sections.get(key) or "").strip()]
    return render_to_string("reporting/report_pdf.html", {
        "report": report,
        "order": order,
        "patient": order.patient,
        "sections": sections,
        "addenda": list(report.addenda.select_related("author")),
        "exam_date": order.images_available_at,
        "referring_physician": _referring_physician(order),
        "printed_at": timezone.now(),
    })


def filename(report):
    """report-<accession>.pdf, from the accession number's safe characters only."""
    safe = "".join(character for character in report.order.accession_number if character.isalnum() or character in "-_")
    return f"report-{safe or report.pk}.pdf"


def _referring_physician(order):
    if order.referring_physician is not None:
        return order.referring_physician.get_full_name() or order.referring_physician.get_username()
    # The name the EHR sent, kept as a DICOM PN: family^given^middle^prefix^suffix.
    family, given, middle, prefix, suffix = (order.referring_physician_name.split("^") + [""] * 5)[:5]
    return " ".join(part for part in (prefix, given, middle, family, suffix) if part)
