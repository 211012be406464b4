"""Where instance files live. The filesystem backend now; an object-storage backend comes with scale-out.

File names come from a SHA-256 of the SOP Instance UID, never from tag values, so no received text ever
becomes part of a path. A file is written aside in `.incoming/`, fsynced, renamed into place, and its folder
fsynced: once `store` returns, the file survives a crash.
"""
import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from django.conf import settings

INCOMING_FOLDER = ".incoming"
HASH_CHUNK = 1 << 20


class FilesystemStorage:
    def __init__(self, root):
        self.root = Path(root)
        self.incoming = self.root / INCOMING_FOLDER
        self.incoming.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key_for(sop_instance_uid, content_sha256):
        """The key of one version of an instance: hashed UID plus a content digest prefix, so two different
        files sent with the same UID never overwrite each other, and the same file always lands in one place."""
        digest = hashlib.sha256(sop_instance_uid.encode("ascii")).hexdigest()
        return f"{digest[:2]}/{digest[2:4]}/{digest}.{content_sha256[:16]}.dcm"

    def path(self, key):
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"storage key outside the archive: {key!r}")
        return path

    def exists(self, key):
        return self.path(key).exists()

    def open(self, key):
        return open(self.path(key), "rb")

    def incoming_file(self):
        """A new temporary file on the archive's filesystem, so that storing it is a rename, not a copy."""
        return tempfile.NamedTemporaryFile(dir=self.incoming, suffix=".part", delete=False)

    def store(self, source_path, key):
        """Move a file from `.incoming/` to `key` durably (fsync file, rename, fsync folder)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(source_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(source_path, target)
        _fsync_folder(target.parent)

    def delete(self, key):
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            pass

    def clean_incoming(self, older_than_seconds=0):
        """Remove files left in `.incoming/` by interrupted transfers."""
        import time

        limit = time.time() - older_than_seconds
        for leftover in self.incoming.iterdir():
            try:
                if leftover.stat().st_mtime <= limit:
                    leftover.unlink()
            except FileNotFoundError:
                pass

    def free_bytes(self):
        usage = os.statvfs(self.root)
        return usage.f_bavail * usage.f_frsize


def file_digest(path):
    """(size in bytes, SHA-256 hex) of a file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _fsync_folder(folder):
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@lru_cache(maxsize=None)
def _storage_for(location):
    return FilesystemStorage(location)


def archive_storage():
    """The configured storage backend (RADIOLOGY_STORAGE)."""
    return _storage_for(settings.STORAGE_LOCATION)
