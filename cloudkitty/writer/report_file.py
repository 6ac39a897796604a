"""One report file: a body written in several runs, then a footer.

The body's size and SHA-256 are recorded after every period, so a run
can tell a file it may continue (its body is intact) from one it must
rebuild (missing, truncated or edited), whatever happened to the footer.
"""

import hashlib
import os

_CHUNK = 1 << 20


def _hash_prefix(handle, size):
    """``(sha256 of the first size bytes, bytes read)`` from ``handle``."""
    digest = hashlib.sha256()
    handle.seek(0)
    remaining = size
    while remaining:
        chunk = handle.read(min(_CHUNK, remaining))
        if not chunk:
            break
        digest.update(chunk)
        remaining -= len(chunk)
    return digest, size - remaining


class ReportFile:
    """A report file open for writing; built by :meth:`create` or
    :meth:`resume`.

    ``body_size`` and ``body_sha256`` describe the bytes before the footer;
    ``extra`` is the writer's state. Close it with :meth:`finish`.
    """

    def __init__(self, path, handle, digest, size, extra):
        self.path = path
        self._handle = handle
        self._digest = digest
        self.body_size = size
        self.extra = extra

    @classmethod
    def create(cls, path):
        """Start ``path`` afresh (an existing file is emptied)."""
        handle = open(path, 'w+b')
        return cls(path, handle, hashlib.sha256(), 0, {})

    @classmethod
    def resume(cls, path, state):
        """Reopen ``path`` to continue the body ``state`` describes.

        Returns ``(report, intact)``: ``report`` is ``None`` when the body
        is not there as written (file missing, shorter, or different);
        ``intact`` tells whether the whole file, footer included, is as the
        last run left it.
        """
        try:
            handle = open(path, 'r+b')
        except FileNotFoundError:
            return None, False
        digest, read = _hash_prefix(handle, state.body_size)
        if read != state.body_size or (
                digest.hexdigest() != state.body_sha256):
            handle.close()
            return None, False
        whole = digest.copy()
        while chunk := handle.read(_CHUNK):
            whole.update(chunk)
        report = cls(path, handle, digest, state.body_size,
                     dict(state.extra))
        return report, whole.hexdigest() == state.file_sha256

    @property
    def body_sha256(self):
        return self._digest.hexdigest()

    def append(self, data):
        """Append ``data`` (bytes) to the body, dropping any footer."""
        handle = self._handle
        if handle.tell() != self.body_size:
            handle.seek(self.body_size)
            handle.truncate()
        handle.write(data)
        self._digest.update(data)
        self.body_size += len(data)

    def rewrite(self, transform):
        """Replace the body with what ``transform(source, target)`` writes.

        ``source`` is a binary file holding the current body, ``target`` an
        empty binary file; the new body replaces the old one atomically.
        """
        self._handle.seek(self.body_size)
        self._handle.truncate()
        self._handle.seek(0)
        temporary = self.path + '.tmp'
        with open(temporary, 'w+b') as target:
            transform(self._handle, target)
        self._handle.close()
        os.replace(temporary, self.path)
        self._handle = open(self.path, 'r+b')
        self._handle.seek(0, os.SEEK_END)
        self.body_size = self._handle.tell()
        self._digest, _ = _hash_prefix(self._handle, self.body_size)

    def finish(self, footer):
        """Write ``footer`` after the body, close; return the file's SHA-256."""
        handle = self._handle
        handle.seek(self.body_size)
        handle.truncate()
        handle.write(footer)
        handle.close()
        whole = self._digest.copy()
        whole.update(footer)
        return whole.hexdigest()

    def close(self):
        """Close without a footer (the next run rewrites it)."""
        self._handle.close()
