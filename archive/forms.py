from django import forms

from archive.models import DicomNode
from archive.studies import modalities_in_archive
from radiology.models import Patient


class StudySearchForm(forms.Form):
    patient_name = forms.CharField(
        label="Patient name", required=False, max_length=324,
        widget=forms.TextInput(attrs={"placeholder": "Doe^J* or Doe, J", "autofocus": True}))
    patient_id = forms.CharField(label="Patient ID", required=False, max_length=64)
    accession_number = forms.CharField(label="Accession", required=False, max_length=64)
    date_from = forms.DateField(label="Study date from", required=False,
                                widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="to", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    modality = forms.ChoiceField(label="Modality", required=False)
    # Set by the patient list's links ("this patient's studies"); not shown as a field.
    patient = forms.ModelChoiceField(queryset=Patient.objects.all(), required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["modality"].choices = [("", "any")] + [(code, code) for code in modalities_in_archive()]

    def clean(self):
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            raise forms.ValidationError("The study date range ends before it starts.")
        return cleaned


class SendStudyForm(forms.Form):
    node = forms.ModelChoiceField(label="Send to", queryset=DicomNode.objects.order_by("name", "ae_title"),
                                  empty_label=None)
