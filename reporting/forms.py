from django import forms

from worklist.models import ProcedureType


class AddendumForm(forms.Form):
    text = forms.CharField(label="Addendum", widget=forms.Textarea(attrs={"rows": 4}))
    password = forms.CharField(label="Your password, to sign", strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class MRRTUploadForm(forms.Form):
    """An IHE MRRT template file (HTML5) to import as a report template."""

    file = forms.FileField(label="MRRT template (.html)")
    modality = forms.CharField(max_length=16, required=False, help_text="Empty fits any modality.")
    procedure = forms.ModelChoiceField(queryset=ProcedureType.objects.filter(active=True), required=False,
                                       help_text="Empty fits any procedure.")
    replace = forms.BooleanField(required=False, label="Replace the template with the same MRRT identifier",
                                 help_text="Otherwise a template already imported is refused.")

    # An MRRT template is a page of text; anything larger is not one.
    MAX_BYTES = 2 * 1024 * 1024

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(f"the file is {upload.size} bytes; an MRRT template is at most "
                                        f"{self.MAX_BYTES} bytes")
        return upload

