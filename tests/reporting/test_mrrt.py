"""IHE MRRT import and export of report templates (reporting/mrrt.py), the import_mrrt command and the admin's
upload form, with a RadReport-shaped template (fixtures/ct_chest_radreport.html)."""
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from reporting.models import ReportTemplate
from reporting.mrrt import MRRTError, export_mrrt, import_mrrt, parse_mrrt

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).parent / "fixtures" / "ct_chest_radreport.html"
IDENTIFIER = "http://www.radreport.org/template/0000901"


def mrrt(body, head='<meta name="dcterms.title" content="T"><meta name="dcterms.identifier" content="urn:t">'):
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"


def section(sections, key):
    return next(s for s in sections if s["key"] == key)


def test_a_radreport_template_imports_with_its_metadata():
    template = import_mrrt(FIXTURE.read_bytes(), modality="CT")

    assert (template.name, template.mrrt_identifier, template.modality) == ("CT Chest", IDENTIFIER, "CT")
    assert [s["key"] for s in template.sections] == [
        "clinical_information", "technique", "comparison", "findings", "impression"]


def test_named_sections_take_the_standard_keys_and_keep_their_titles():
    sections = import_mrrt(FIXTURE.read_bytes()).sections

    assert section(sections, "technique")["title"] == "Procedure"
    assert section(sections, "clinical_information")["title"] == "Clinical Information"


def test_the_sections_free_text_comes_from_its_textarea_or_its_prose():
    sections = import_mrrt(FIXTURE.read_bytes()).sections

    assert section(sections, "impression")["default_text"] == "No acute cardiopulmonary abnormality."
    assert section(sections, "technique")["default_text"] == "CT of the chest was performed."
    # Prose of a subsection belongs to its section; lines that hold fields are not prose.
    assert section(sections, "findings")["default_text"] == "The lungs are clear."


def test_fields_become_pick_lists_numbers_with_units_dates_and_text():
    sections = import_mrrt(FIXTURE.read_bytes()).sections
    fields = {field["key"]: field for s in sections for field in s.get("fields", [])}

    assert fields["contrast"] == {"key": "contrast", "label": "Contrast", "type": "picklist",
                                  "options": ["without IV contrast", "with IV contrast"],
                                  "default": "without IV contrast"}
    assert fields["pleural_effusion"]["options"] == ["none", "small", "moderate", "large"]
    assert (fields["ctdivol"]["type"], fields["ctdivol"]["unit"]) == ("number", "mGy")
    assert (fields["largest_nodule"]["unit"], fields["largest_nodule"]["default"]) == ("mm", "0")
    assert fields["prior_study_date"]["type"] == "date"
    assert (fields["mediastinum"]["type"], fields["mediastinum"]["default"]) == ("text", "Normal")
    assert [f["key"] for f in section(sections, "findings")["fields"]] == [
        "largest_nodule", "pleural_effusion", "mediastinum"]


def test_export_then_import_gives_the_same_template():
    original = import_mrrt(FIXTURE.read_bytes())

    exported = export_mrrt(original)
    again = parse_mrrt(exported)

    assert again["name"] == original.name
    assert again["identifier"] == IDENTIFIER
    assert again["sections"] == original.sections


def test_export_of_a_hand_made_template_escapes_its_text_and_round_trips():
    template = ReportTemplate.objects.create(name="US <liver>", sections=[
        {"key": "findings", "title": "Findings & notes", "default_text": 'Liver "normal" <size>.',
         "fields": [{"key": "span", "label": "Liver span", "type": "number", "unit": "cm", "default": ""},
                    {"key": "echo", "label": "Echogenicity", "type": "picklist",
                     "options": ["normal", "increased"], "default": "normal"}]}])

    exported = export_mrrt(template)

    assert "<liver>" not in exported and "&lt;liver&gt;" in exported
    parsed = parse_mrrt(exported)
    assert parsed["identifier"] == f"urn:radiology-platform:report-template:{template.pk}"
    assert parsed["sections"] == template.sections


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"\xff\xfe\x00not utf-8", "not UTF-8"),
    (b"just some text", "no <html> element"),
    ("<html><body><section data-section-name='Findings'></section></body></html>", "<head>"),
    (mrrt("<section data-section-name='Findings'></section>", head='<meta name="dcterms.identifier" content="x">'),
     "dcterms.title"),
    (mrrt("<section data-section-name='Findings'></section>", head='<meta name="dcterms.title" content="x">'),
     "dcterms.identifier"),
    (mrrt("<section data-section-name='Findings'></section>",
          head='<meta name="dcterms.title" content="x"><meta name="dcterms.identifier" content="y">'
               '<meta name="dcterms.type" content="FORM">'), "IMAGE_REPORT_TEMPLATE"),
    (mrrt("<p>No sections at all.</p>"), "no report sections"),
    (mrrt("<section><p>Unnamed</p></section>"), "section 1 has no name"),
    (mrrt("<section data-section-name='Findings'><select id='a' name='a'></select></section>"),
     "pick list a needs options"),
    (mrrt("<section data-section-name='Findings'><input type='text'></section>"), "neither id nor name"),
])
def test_invalid_mrrt_is_refused_with_the_reason_and_nothing_is_imported(content, reason):
    with pytest.raises(MRRTError, match=reason.replace("(", r"\(")):
        import_mrrt(content)
    assert not ReportTemplate.objects.exists()


def test_a_template_already_imported_is_refused_unless_replaced():
    first = import_mrrt(FIXTURE.read_bytes())

    with pytest.raises(MRRTError, match="already imported"):
        import_mrrt(FIXTURE.read_bytes())
    replaced = import_mrrt(FIXTURE.read_bytes(), modality="CT", replace=True)

    assert replaced.pk == first.pk and replaced.modality == "CT"
    assert ReportTemplate.objects.count() == 1


def test_the_command_imports_files_and_refuses_invalid_ones(tmp_path, capsys):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><head></head><body></body></html>")

    with pytest.raises(CommandError, match="1 file"):
        call_command("import_mrrt", str(FIXTURE), str(bad), "--modality", "ct")

    output = capsys.readouterr()
    assert "imported \u201cCT Chest\u201d" in output.out
    assert "bad.html: refused: " in output.err and "dcterms.title" in output.err
    assert ReportTemplate.objects.get().modality == "CT"


def test_the_admin_imports_an_uploaded_file_and_exports_it(client, administrator):
    client.force_login(administrator)
    url = reverse("admin:reporting_reporttemplate_import_mrrt")

    refused = client.post(url, {"file": SimpleUploadedFile("x.html", b"<html>nope</html>")})
    imported = client.post(url, {"file": SimpleUploadedFile("ct.html", FIXTURE.read_bytes()), "modality": "ct"})

    assert refused.status_code == 200 and "Not imported" in refused.content.decode()
    template = ReportTemplate.objects.get()
    assert imported.status_code == 302 and template.modality == "CT"
    exported = client.post(reverse("admin:reporting_reporttemplate_changelist"),
                           {"action": "export_mrrt", "_selected_action": [template.pk]})
    assert exported["Content-Type"].startswith("text/html")
    assert parse_mrrt(exported.content)["sections"] == template.sections
