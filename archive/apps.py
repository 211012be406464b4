from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    name = "archive"
    verbose_name = "Archive (PACS)"

    def ready(self):
        from archive import routing
        from archive.signals import instance_stored

        instance_stored.connect(routing.route_instance, dispatch_uid="archive.routing.route_instance")
