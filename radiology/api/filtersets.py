import django_filters

from radiology.models import Patient
from radiology.patients import search_patients


class PatientFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_text", label="Name prefix (Family, Given or Family^Given) or MRN")
    mrn = django_filters.CharFilter()
    issuer = django_filters.CharFilter()
    birth_date = django_filters.DateFilter()

    class Meta:
        model = Patient
        fields = ["q", "mrn", "issuer", "birth_date", "sex"]

    def filter_text(self, queryset, name, value):
        return search_patients(text=value, queryset=queryset)
