from django.apps import AppConfig


class RadiologyConfig(AppConfig):
    name = "radiology"
    verbose_name = "Patients and platform"

    def ready(self):
        from radiology import roles  # noqa: F401 - connects the post_migrate role sync
