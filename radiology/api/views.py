from rest_framework import viewsets

from radiology.api.filtersets import PatientFilterSet
from radiology.api.serializers import PatientSerializer
from radiology.models import Patient


class PatientViewSet(viewsets.ModelViewSet):
    queryset = Patient.objects.filter(merged_into__isnull=True)
    serializer_class = PatientSerializer
    filterset_class = PatientFilterSet
    http_method_names = ["get", "post", "put", "patch", "head", "options"]
