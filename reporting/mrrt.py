"""IHE Management of Radiology Report Templates (MRRT): import and export of report templates.

An MRRT template (IHE RAD TF Suppl. MRRT, the format of RSNA's RadReport library) is an HTML5 document: its
metadata in <meta name="dcterms.*" content="…"> elements of the head (dcterms.title and dcterms.identifier
required, dcterms.type IMAGE_REPORT_TEMPLATE), its report sections as <section> elements of the body, each
named by data-section-name or a heading (<header>, <h1>…<h6>), holding text and fields: <input> (text, number,
date, checkbox, radio), <select> with <option>s, <textarea>, labelled by <label for="…">.

Import maps that to ReportTemplate.sections (checked by reporting.templates.check_sections):
- a section named like a standard one (Clinical information / History / Indication, Technique, Comparison,
  Findings, Impression / Conclusion, Recommendation) takes the standard key, others their id;
- the section's free text is its first <textarea> (or the one marked data-section-text); a section without a
  textarea keeps the prose of its paragraphs that hold no field as its default text;
- fields: text inputs and further textareas → free text; number inputs → number, the unit from
  data-field-unit or the text just after the input; date inputs → date; selects, radio groups and checkboxes
  (no / yes) → pick lists; data-field-type (TEXT, NUMBER, DATE, SELECTION, CHECKBOX) wins over the tag;
- field keys come from the control's name (its id when the name is taken);
- subsections (<section> inside a section) belong to the top-level section they are in.
Export writes the same shape back, so an exported template imports to the same sections.
"""
import re
from html import escape
from html.parser import HTMLParser

from django.core.exceptions import ValidationError
from django.db import transaction

from reporting.choices import FieldType
from reporting.models import ReportTemplate
from reporting.templates import check_sections

TEMPLATE_TYPE = "IMAGE_REPORT_TEMPLATE"
MAX_BYTES = 2 * 1024 * 1024

# Section names used in RadReport templates for the standard sections.
_SECTION_ALIASES = {
    "clinical_information": {"clinical information", "clinical history", "history", "indication", "indications",
                             "clinical indication", "reason for exam", "clinical data"},
    "technique": {"technique", "procedure", "protocol", "procedure description", "examination"},
    "comparison": {"comparison", "comparisons", "prior studies", "priors"},
    "findings": {"findings"},
    "impression": {"impression", "conclusion", "conclusions", "summary"},
    "recommendation": {"recommendation", "recommendations", "follow-up", "follow up"},
}
_KEY_BY_NAME = {alias: key for key, aliases in _SECTION_ALIASES.items() for alias in aliases}
_HEADINGS = ("header", "h1", "h2", "h3", "h4", "h5", "h6")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Elements whose text is not report prose.
_NOT_PROSE = {"header", "h1", "h2", "h3", "h4", "h5", "h6", "label", "select", "option", "textarea", "script",
              "style"}
_FIELD_TYPES = {"TEXT": FieldType.TEXT, "NUMBER": FieldType.NUMBER, "DATE": FieldType.DATE,
                "SELECTION": FieldType.PICKLIST, "CHECKBOX": FieldType.PICKLIST}
_UNIT_TEXT = re.compile(r"^\s*([^\s<>]{1,16})")


class MRRTError(ValueError):
    """The file is not a template this importer can take; the message says what is wrong."""


def import_mrrt(content, *, modality="", procedure=None, replace=False):
    """Create (or, with `replace`, update) the ReportTemplate described by an MRRT file's `content` (bytes or
    text). Raises MRRTError and changes nothing when the file is not valid MRRT."""
    template = parse_mrrt(content)
    with transaction.atomic():
        existing = ReportTemplate.objects.select_for_update().filter(
            mrrt_identifier=template["identifier"]).first()
        if existing is not None and not replace:
            raise MRRTError(f"the template {template['identifier']} is already imported as "
                            f"\u201c{existing.name}\u201d; import it again with replace to update it")
        target = existing or ReportTemplate(mrrt_identifier=template["identifier"])
        target.name, target.sections = template["name"][:128], template["sections"]
        target.modality, target.procedure = modality, procedure
        target.save()
    return target


def parse_mrrt(content):
    """{"name", "identifier", "sections"} of an MRRT file, or MRRTError saying why it is not one."""
    text = _text(content)
    document = _parse_html(text)
    html = document.find("html")
    if html is None:
        raise MRRTError("not an MRRT template: there is no <html> element (an MRRT template is an HTML5 document)")
    head, body = html.find("head"), html.find("body")
    if head is None or body is None:
        raise MRRTError("not an MRRT template: it needs a <head> with the metadata and a <body> with the sections")
    metadata = {meta.attrs.get("name", "").strip().lower(): (meta.attrs.get("content") or "").strip()
                for meta in head.iter("meta") if meta.attrs.get("name")}
    title_element = head.find("title")
    name = metadata.get("dcterms.title") or (title_element.text().strip() if title_element else "")
    if not name:
        raise MRRTError('the template has no title: <meta name="dcterms.title" content="…"> is required')
    identifier = metadata.get("dcterms.identifier", "")
    if not identifier:
        raise MRRTError('the template has no identifier: <meta name="dcterms.identifier" content="…"> is required')
    if len(identifier) > 255:
        raise MRRTError("the template's dcterms.identifier is longer than 255 characters")
    kind = metadata.get("dcterms.type", "")
    if kind and kind.upper() != TEMPLATE_TYPE:
        raise MRRTError(f"dcterms.type is {kind!r}; an MRRT report template is {TEMPLATE_TYPE}")
    section_elements = [section for section in body.iter("section") if section.enclosing("section") is None]
    if not section_elements:
        raise MRRTError("the template has no report sections: the body holds them as <section> elements")
    labels = {label.attrs.get("for"): label.text().strip() for label in body.iter("label") if label.attrs.get("for")}
    used_keys = set()
    sections = [_section(number, element, labels, used_keys)
                for number, element in enumerate(section_elements, start=1)]
    try:
        check_sections(sections)
    except ValidationError as exc:
        raise MRRTError(f"the template's sections are not usable: {' '.join(exc.messages)}") from exc
    return {"name": name, "identifier": identifier, "sections": sections}


def export_mrrt(template):
    """The template as an MRRT HTML5 document (text)."""
    identifier = template.mrrt_identifier or f"urn:radiology-platform:report-template:{template.pk}"
    date = template.updated_at.date().isoformat() if template.updated_at else ""
    lines = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="UTF-8">',
             f"<title>{escape(template.name)}</title>",
             f'<meta name="dcterms.title" content="{escape(template.name)}">',
             f'<meta name="dcterms.identifier" content="{escape(identifier)}">',
             f'<meta name="dcterms.type" content="{TEMPLATE_TYPE}">',
             '<meta name="dcterms.language" content="en">']
    if date:
        lines.append(f'<meta name="dcterms.date" content="{date}">')
    lines += ["</head>", "<body>"]
    for section in template.sections:
        key, title = section["key"], section["title"]
        lines += [f'<section id="{escape(key)}" class="level1" data-section-name="{escape(title)}">',
                  f'<header class="level1">{escape(title)}</header>',
                  f'<p><textarea id="{escape(key)}_text" name="{escape(key)}_text" data-section-text="true" '
                  f'data-field-type="TEXT">{escape(section.get("default_text", ""))}</textarea></p>']
        lines += [_field_html(field) for field in section.get("fields", [])]
        lines.append("</section>")
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines)


# --- import ----------------------------------------------------------------------------------------------

def _text(content):
    if isinstance(content, bytes):
        if len(content) > MAX_BYTES:
            raise MRRTError(f"the file is {len(content)} bytes; an MRRT template is at most {MAX_BYTES} bytes")
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MRRTError(f"the file is not UTF-8 text (byte {exc.start}); MRRT templates are UTF-8") from exc
    if not content.strip():
        raise MRRTError("the file is empty")
    return content


def _section(number, element, labels, used_keys):
    title = (element.attrs.get("data-section-name") or "").strip()
    if not title:
        heading = next((child for child in element.iter(*_HEADINGS)), None)
        title = heading.text().strip() if heading is not None else ""
    if not title:
        raise MRRTError(f"section {number} has no name: give it data-section-name or a <header> heading")
    title = " ".join(title.split())
    key = _KEY_BY_NAME.get(title.lower().rstrip(":")) or _key(element.attrs.get("id") or title)
    controls = list(element.iter("input", "select", "textarea"))
    section_text = next((c for c in controls if c.tag == "textarea" and c.attrs.get("data-section-text")), None)
    section_text = section_text or next((c for c in controls if c.tag == "textarea"), None)
    fields, radio_groups = [], {}
    for control in controls:
        if control is section_text:
            continue
        field = _field(control, labels, radio_groups, used_keys)
        if field is not None:
            fields.append(field)
            used_keys.add(field["key"])
    default_text = section_text.text().strip() if section_text is not None else _prose(element)
    return {"key": key, "title": title, "default_text": default_text, "fields": fields}


def _field(control, labels, radio_groups, used_keys):
    """The field of one form control, or None for controls that are no field (hidden, buttons, a further
    radio button of a group already seen, which is added to that group's options)."""
    attrs = control.attrs
    input_type = (attrs.get("type") or "text").lower() if control.tag == "input" else control.tag
    if input_type in ("hidden", "submit", "button", "reset", "image", "file"):
        return None
    identifier = attrs.get("id") or attrs.get("name") or ""
    if not identifier:
        raise MRRTError(f"a <{control.tag}> field has neither id nor name")
    label = (labels.get(attrs.get("id")) or attrs.get("data-field-name") or attrs.get("title")
             or identifier.replace("_", " ")).strip()
    declared = _FIELD_TYPES.get((attrs.get("data-field-type") or "").upper())
    if input_type == "radio":
        group_name = attrs.get("name") or identifier
        value = attrs.get("value") or label
        if group_name in radio_groups:
            group = radio_groups[group_name]
            group["options"].append(value)
            if "checked" in attrs:
                group["default"] = value
            return None
        group = {"key": _key(group_name), "label": attrs.get("data-field-name") or group_name.replace("_", " "),
                 "type": FieldType.PICKLIST, "options": [value], "default": value if "checked" in attrs else ""}
        radio_groups[group_name] = group
        return group
    # The name says what the field is ("Pleural effusion"); RadReport ids are T1, T2… Names need not be unique
    # in MRRT, ids are: a name already taken falls back to the id.
    key = _key(attrs.get("name") or identifier)
    if key in used_keys:
        key = _key(identifier)
    field = {"key": key, "label": " ".join(label.split())}
    if control.tag == "select" or declared == FieldType.PICKLIST and input_type != "checkbox":
        options = [(option.attrs.get("value") if option.attrs.get("value") is not None else option.text()).strip()
                   for option in control.iter("option")]
        selected = next((o for o in control.iter("option") if "selected" in o.attrs), None)
        field.update(type=FieldType.PICKLIST, options=[option for option in options if option],
                     default=(selected.attrs.get("value") or selected.text()).strip() if selected else "")
    elif input_type == "checkbox":
        field.update(type=FieldType.PICKLIST, options=["no", "yes"], default="yes" if "checked" in attrs else "no")
    elif declared == FieldType.NUMBER or input_type == "number":
        field.update(type=FieldType.NUMBER, unit=_unit(control), default=attrs.get("value") or "")
    elif declared == FieldType.DATE or input_type == "date":
        field.update(type=FieldType.DATE, default=attrs.get("value") or "")
    else:
        field.update(type=FieldType.TEXT,
                     default=(control.text() if control.tag == "textarea" else attrs.get("value") or "").strip())
    return field


def _unit(control):
    unit = control.attrs.get("data-field-unit") or control.attrs.get("data-unit")
    if unit:
        return unit.strip()
    following = control.next_sibling()
    if isinstance(following, str):
        match = _UNIT_TEXT.match(following)
        return match.group(1) if match else ""
    if isinstance(following, _Node) and following.tag == "span":
        return following.text().strip()[:16]
    return ""


def _prose(section):
    """The section's own text: paragraphs that hold no field, one per line."""
    lines, current = [], []

    def flush():
        line = " ".join("".join(current).split())
        if line:
            lines.append(line)
        current.clear()

    def walk(node):
        for child in node.children:
            if isinstance(child, str):
                current.append(child)
            elif child.tag in _NOT_PROSE:
                continue
            elif child.tag in ("p", "div", "li", "br", "tr"):
                flush()
                if child.find("input") is None and child.find("select") is None and child.find("textarea") is None:
                    walk(child)
                flush()
            elif child.tag == "input":
                continue
            else:
                walk(child)
    walk(section)
    flush()
    return "\n".join(lines)


def _key(identifier):
    key = re.sub(r"[^A-Za-z0-9_]+", "_", identifier.strip()).strip("_").lower()
    return key or "field"


# --- export ----------------------------------------------------------------------------------------------

def _field_html(field):
    key, label = escape(field["key"]), escape(field["label"])
    default = str(field.get("default", "") or "")
    kind = field.get("type", FieldType.TEXT)
    if kind == FieldType.PICKLIST:
        options = "".join(
            f'<option value="{escape(option)}"{" selected" if option == default else ""}>{escape(option)}</option>'
            for option in field.get("options", []))
        control = f'<select id="{key}" name="{key}" data-field-type="SELECTION">{options}</select>'
    elif kind == FieldType.NUMBER:
        unit = escape(field.get("unit", "") or "")
        control = (f'<input type="number" id="{key}" name="{key}" data-field-type="NUMBER" step="any" '
                   f'data-field-unit="{unit}" value="{escape(default)}"> <span class="unit">{unit}</span>')
    elif kind == FieldType.DATE:
        control = f'<input type="date" id="{key}" name="{key}" data-field-type="DATE" value="{escape(default)}">'
    else:
        control = f'<input type="text" id="{key}" name="{key}" data-field-type="TEXT" value="{escape(default)}">'
    return f'<p><label for="{key}">{label}</label> {control}</p>'


# --- a small HTML tree (the standard library's tokenizer; MRRT files need no more) ---------------------------

class _Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    def iter(self, *tags):
        for child in self.children:
            if isinstance(child, _Node):
                if not tags or child.tag in tags:
                    yield child
                yield from child.iter(*tags)

    def find(self, tag):
        return next(self.iter(tag), None)

    def text(self):
        return "".join(child if isinstance(child, str) else child.text() for child in self.children)

    def enclosing(self, tag):
        node = self.parent
        while node is not None and node.tag != tag:
            node = node.parent
        return node

    def next_sibling(self):
        siblings = self.parent.children
        index = next(i for i, child in enumerate(siblings) if child is self)
        return siblings[index + 1] if index + 1 < len(siblings) else None


class _TreeBuilder(HTMLParser):
    # Elements whose start closes an open element of the same kind (HTML's optional end tags).
    _SELF_CLOSING_SIBLINGS = {"option", "p", "li"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.current = _Node("#document", {}, None)

    def handle_starttag(self, tag, attrs):
        if tag in self._SELF_CLOSING_SIBLINGS and self.current.tag == tag:
            self.current = self.current.parent
        node = _Node(tag, {name: value if value is not None else "" for name, value in attrs}, self.current)
        self.current.children.append(node)
        if tag not in _VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(
            _Node(tag, {name: value if value is not None else "" for name, value in attrs}, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def _parse_html(text):
    builder = _TreeBuilder()
    try:
        builder.feed(text)
        builder.close()
    except Exception as exc:  # noqa: BLE001 - the tokenizer's own complaint is the clearest message
        raise MRRTError(f"the file is not readable as HTML: {exc}") from exc
    return builder.root

