"""The dictation panel the editor includes (reporting/templates/reporting/_dictation.html)."""
from types import SimpleNamespace

from django.template.loader import render_to_string


def test_the_panel_names_the_report_and_loads_the_module():
    html = render_to_string("reporting/_dictation.html", {"report": SimpleNamespace(pk=42)})

    assert 'id="dictation-panel"' in html and 'data-report-id="42"' in html
    assert 'data-dictation="toggle"' in html and 'data-dictation="status"' in html
    assert 'src="/static/js/dictation.js"' in html
