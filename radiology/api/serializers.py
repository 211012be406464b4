from rest_framework import serializers

from radiology.models import Patient


class PatientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = ["id", "mrn", "issuer", "family_name", "given_name", "birth_date", "sex", "merged_into",
                  "created_at", "updated_at"]
        read_only_fields = ["merged_into", "created_at", "updated_at"]
