"""/api/dictations/: dictation audio (WAV) uploaded for a report, and its `status` and `transcript`.

    POST /api/dictations/            multipart: report, audio (WAV), section (optional) → 201, status "queued";
                                     or report, transcript (text the browser recognised), section → 201, "done"
    GET  /api/dictations/?report=ID  the caller's own dictations; GET /api/dictations/{id}/ one of them, with its
                                     `segments` (the editor polls it when the WebSocket is down)
    GET  /api/dictations/backend/    which backend transcribes and the upload limits, for the editor's recorder

Bad audio (not WAV, not PCM, too long, too large) is a 400 naming the problem, and nothing is stored; a report
that cannot take dictation (signed, someone else's) is a 409 with {"detail": why}. Only report writers
(reporting.change_report) dictate.
"""
from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from radiology.choices import AuditChannel
from reporting.dictation import audio, commands, services
from reporting.dictation.backends import get_backend
from reporting.models import Dictation, DictationStatus, Report


class DictationSerializer(serializers.ModelSerializer):
    audio_kept = serializers.SerializerMethodField(help_text="Whether the recording is still stored.")
    segments = serializers.SerializerMethodField(
        help_text="The transcript's text and voice commands in order, as the WebSocket sends them.")

    class Meta:
        model = Dictation
        fields = ["id", "report", "section", "backend", "status", "transcript", "segments", "error",
                  "duration_seconds", "audio_kept", "created_at", "finished_at"]
        read_only_fields = fields

    def get_audio_kept(self, dictation) -> bool:
        return bool(dictation.audio_name)

    def get_segments(self, dictation) -> list[dict]:
        if dictation.status != DictationStatus.DONE:
            return []
        # One look-up of the user's macros per response, however many dictations it lists.
        macros = self.context.setdefault("macros", {})
        if dictation.user_id not in macros:
            macros[dictation.user_id] = commands.macros_for(dictation.user)
        return commands.parse(dictation.transcript, macros[dictation.user_id])


class DictationUploadSerializer(serializers.Serializer):
    report = serializers.PrimaryKeyRelatedField(queryset=Report.objects.select_related("author", "order"))
    section = serializers.CharField(required=False, allow_blank=True, default="", max_length=64,
                                    help_text="The report section the cursor is in.")
    audio = serializers.FileField(required=False, help_text="16 kHz mono 16-bit PCM WAV (other PCM WAV is "
                                                            "converted); at most the configured length and size.")
    transcript = serializers.CharField(required=False, allow_blank=False, max_length=20000,
                                       help_text="Text recognised by the browser (browser backend), instead of audio.")

    def validate(self, data):
        if ("audio" in data) == ("transcript" in data):
            raise serializers.ValidationError("send either `audio` (a WAV recording) or `transcript`, not both "
                                              "and not neither")
        return data


class BackendSerializer(serializers.Serializer):
    backend = serializers.CharField()
    accepts_audio = serializers.BooleanField()
    sample_rate = serializers.IntegerField()
    max_seconds = serializers.IntegerField()
    max_bytes = serializers.IntegerField()


class CanDictate(permissions.BasePermission):
    """Dictating is writing a report."""

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.has_perm("reporting.change_report"))


REFUSED = OpenApiResponse(description="Refused by the reporting rules; `detail` says why.")


@extend_schema_view(
    create=extend_schema(request={"multipart/form-data": DictationUploadSerializer},
                         responses={201: DictationSerializer, 400: OpenApiResponse(description="Bad audio or "
                                                                                   "fields; the body says which."),
                                    409: REFUSED}),
)
class DictationViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                       viewsets.GenericViewSet):
    """Dictations of the calling user."""

    queryset = Dictation.objects.select_related("user")
    serializer_class = DictationSerializer
    permission_classes = [CanDictate]
    filterset_fields = ["report", "status"]

    def get_queryset(self):
        return super().get_queryset().filter(user=self.request.user)

    def create(self, request, *args, **kwargs):
        form = DictationUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            if "audio" in data:
                dictation = services.record_dictation(data["report"], request.user, data["audio"],
                                                      section=data["section"], channel=AuditChannel.API)
            else:
                dictation = services.record_browser_transcript(data["report"], request.user, data["transcript"],
                                                               section=data["section"], channel=AuditChannel.API)
        except audio.AudioRejected as exc:
            return Response({"audio": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        except services.DictationRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(dictation).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=BackendSerializer)
    @action(detail=False, methods=["get"])
    def backend(self, request):
        """The speech-to-text backend of this site and the limits of an upload."""
        backend = get_backend()
        return Response(BackendSerializer({
            "backend": backend.name, "accepts_audio": backend.accepts_audio, "sample_rate": audio.SAMPLE_RATE,
            "max_seconds": settings.DICTATION_MAX_SECONDS, "max_bytes": settings.DICTATION_MAX_BYTES}).data)


def register(router):
    router.register("dictations", DictationViewSet)
