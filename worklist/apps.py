from django.apps import AppConfig


class WorklistConfig(AppConfig):
    name = "worklist"
    verbose_name = "Worklist (RIS)"

    def ready(self):
        from archive.signals import instance_stored
        from worklist import reconciliation

        instance_stored.connect(reconciliation.reconcile_new_study,
                                dispatch_uid="worklist.reconciliation.reconcile_new_study")
        # Modality Worklist FIND and MPPS, served by the archive's DICOM listener (worklist/dimse/).
        from worklist import dimse

        dimse.register_services()
