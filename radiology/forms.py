from django import forms


class PatientSearchForm(forms.Form):
    q = forms.CharField(
        label="Name or MRN", required=False, max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "Family, Given — or MRN", "autofocus": True}))
    birth_date = forms.DateField(label="Birth date", required=False, widget=forms.DateInput(attrs={"type": "date"}))
