"""Patient look-up rules, shared by the portal, the REST API and (later) FHIR."""
import re

from django.db.models import Q

from radiology.models import Patient

_NAME_SEPARATORS = re.compile(r"[\^,]")


def search_patients(text="", mrn="", birth_date=None, queryset=None):
    """Patients matching free text (a name prefix "Family, Given" / "Family^Given", or an MRN), an exact MRN
    and a birth date. Merged-away records are left out: their studies and orders belong to the survivor."""
    patients = (queryset if queryset is not None else Patient.objects.all()).filter(merged_into__isnull=True)
    text = text.strip()
    if text:
        if _NAME_SEPARATORS.search(text):
            family, given = (part.strip() for part in _NAME_SEPARATORS.split(text, maxsplit=1))
            patients = patients.filter(family_name__istartswith=family, given_name__istartswith=given)
        else:
            patients = patients.filter(
                Q(family_name__istartswith=text) | Q(given_name__istartswith=text) | Q(mrn=text))
    if mrn:
        patients = patients.filter(mrn=mrn.strip())
    if birth_date:
        patients = patients.filter(birth_date=birth_date)
    return patients
