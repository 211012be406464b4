import sys
from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from archive.ingest import ingest_file
from radiology.audit import record_audit_event
from radiology.choices import AuditChannel, AuditEventCode, AuditOutcome

# Media directories index files that are imported on their own; they are not instances.
SKIPPED_NAMES = {"DICOMDIR"}


class Command(BaseCommand):
    help = "Import DICOM files and folders (recursively) into the archive. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args, paths, quiet, **options):
        files = []
        for raw in paths:
            path = Path(raw)
            if not path.exists():
                raise CommandError(f"{raw}: no such file or folder")
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
        files = [path for path in files if path.name.upper() not in SKIPPED_NAMES]

        outcomes = Counter()
        rejected = []
        progress = tqdm(files, unit="file", disable=quiet or None, file=sys.stderr, desc="importing")
        for path in progress:
            result = ingest_file(path, calling_ae="import_dicom")
            outcomes[result.outcome] += 1
            if result.outcome == "rejected" or result.reason:
                rejected.append((path, result))

        stored, duplicates = outcomes["stored"] + outcomes["replaced"], outcomes["duplicate"]
        failed = outcomes["rejected"]
        record_audit_event(
            AuditEventCode.IMPORT, action="C", channel=AuditChannel.SYSTEM, actor="import_dicom",
            outcome=AuditOutcome.MINOR_FAILURE if failed else AuditOutcome.SUCCESS,
            object_type="files", object_id=", ".join(paths)[:128], stored=stored, duplicates=duplicates,
            kept_first=outcomes["kept-first"], rejected=failed)

        self.stdout.write(f"{len(files)} files: {stored} stored, {duplicates} duplicates, "
                          f"{outcomes['kept-first']} kept the stored copy, {failed} rejected")
        for path, result in rejected:
            label = "rejected" if result.outcome == "rejected" else result.outcome
            self.stdout.write(f"  {label}: {path}: {result.reason} (status 0x{result.status:04X})")
        if failed:
            sys.exit(1)
