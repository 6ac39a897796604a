"""Report writers: rated data turned into files, one per scope and month.

The write orchestrator (:mod:`cloudkitty.writer.orchestrator`) reads the
rated data and owns the files: it opens, checks, truncates and hashes them,
and keeps its progress in the ``writer_file_states`` table. A writer only
formats: it is handed a :class:`~cloudkitty.writer.report_file.ReportFile`
and appends bytes to the file's body, period after period; the footer
(totals) is written after the body and replaced on every run.

Writers are entry points of ``cloudkitty.output.writers`` named in
``[output] pipeline`` and built as ``Writer(conf)``: :mod:`.osrf` (JSON) and
:mod:`.csv_report` (CSV) ship with the service; :mod:`.report_file` is the
file a writer is handed.
"""

import abc

from stevedore import extension

NAMESPACE = 'cloudkitty.output.writers'


class WriterError(Exception):
    """The report writer cannot run (unknown writer, busy directory...)."""


class BaseWriter(abc.ABC):
    """Formats one scope's month of rated data as one file.

    :param conf: the service's ``ConfigOpts``.

    A file is written in several runs: :meth:`begin` once on an empty file,
    :meth:`write_period` for each collect period in order, :meth:`footer`
    at the end of every run. What a writer must remember between runs
    (columns seen so far...) goes in ``report.extra``, a JSON-serialisable
    dict saved with the file's state.
    """

    def __init__(self, conf):
        self.conf = conf

    @abc.abstractmethod
    def filename(self, scope_id, month):
        """Return the file's name (no directory) for ``scope_id`` and the
        month starting at ``month`` (an aware UTC datetime).

        ``scope_id`` is already made safe for a file name.
        """

    @abc.abstractmethod
    def begin(self, report):
        """Start an empty file: append what precedes the first period."""

    @abc.abstractmethod
    def write_period(self, report, frame):
        """Append one period, a :class:`~cloudkitty.dataframe.DataFrame` of
        the scope's points (never empty)."""

    @abc.abstractmethod
    def footer(self, report, scope_id, month, until, total):
        """Return the bytes that end the file.

        :param until: the end of the window the body covers.
        :param total: the exact sum (``Decimal``) of the prices written.
        """


def get_writers(conf):
    """Build the writers of ``[output] pipeline``, in its order.

    Raises :class:`WriterError` naming an unknown writer and the installed
    ones.
    """
    manager = extension.ExtensionManager(NAMESPACE)
    installed = {ext.name: ext.plugin for ext in manager}
    writers = []
    for name in conf.output.pipeline:
        if name not in installed:
            raise WriterError(
                f'[output] pipeline: unknown writer {name!r} (installed in '
                f'{NAMESPACE}: {", ".join(sorted(installed)) or "none"})')
        writers.append((name, installed[name](conf)))
    return writers
