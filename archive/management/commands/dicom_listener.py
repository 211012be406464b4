import sys

from django.core.management.base import BaseCommand

from archive.dimse.listener import DicomListener
from radiology.server import run_components


class Command(BaseCommand):
    help = ("Run one more DICOM listener process on RADIOLOGY_DICOM_PORT, sharing it (SO_REUSEPORT) with the "
            "listener in `serve`. `serve` starts these itself when RADIOLOGY_DICOM_PROCESSES is above 1.")

    def handle(self, *args, **options):
        sys.exit(run_components([DicomListener(reuse_port=True)]))
