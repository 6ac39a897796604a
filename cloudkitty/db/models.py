"""Models of the service's own tables: scope states, the reprocessing
schedule, rating module states, the meta collector's mappings and collector
states, and the writer's file states (the rated-data tables belong to their
storage backend but live in the same metadata and alembic environment; the
rating modules' tables live with their modules)."""

import sqlalchemy as sa
from sqlalchemy import orm


class Base(orm.DeclarativeBase):
    """Base of every model; all tables live in ``Base.metadata``."""


class ScopeState(Base):
    """Where one scope stands: the start of the last period processed."""

    __tablename__ = 'cloudkitty_storage_states'
    __table_args__ = (
        sa.UniqueConstraint('identifier', 'scope_key', 'collector', 'fetcher',
                            name='uq_storage_states_scope'),
    )

    id = sa.Column(sa.Integer, primary_key=True)
    identifier = sa.Column(sa.String(256), nullable=False)
    scope_key = sa.Column(sa.String(40), nullable=False)
    fetcher = sa.Column(sa.String(40), nullable=False)
    collector = sa.Column(sa.String(40), nullable=False)
    last_processed_timestamp = sa.Column(sa.DateTime, nullable=True)
    active = sa.Column(sa.Boolean, nullable=False, server_default=sa.true())
    scope_activation_toggle_date = sa.Column(sa.DateTime, nullable=True)


class ReprocessingTask(Base):
    """A request to re-rate one scope over ``[start, end)``."""

    __tablename__ = 'storage_states_reprocessing_scheduler'

    id = sa.Column(sa.Integer, primary_key=True)
    identifier = sa.Column(sa.String(256), nullable=False, index=True)
    reason = sa.Column(sa.Text, nullable=False)
    start_reprocess_time = sa.Column(sa.DateTime, nullable=False)
    end_reprocess_time = sa.Column(sa.DateTime, nullable=False)
    current_reprocess_time = sa.Column(sa.DateTime, nullable=True)


class ModuleState(Base):
    """Whether a rating module is enabled, and its place in the pipeline."""

    __tablename__ = 'rated_data_modules'

    name = sa.Column(sa.String(255), primary_key=True)
    enabled = sa.Column(sa.Boolean, nullable=False, server_default=sa.false())
    priority = sa.Column(sa.Integer, nullable=False, server_default='1')


class CollectorMapping(Base):
    """The collector that gathers one service (metric type), for the meta
    collector."""

    __tablename__ = 'service_to_collector_mappings'

    service = sa.Column(sa.String(255), primary_key=True)
    collector = sa.Column(sa.String(255), nullable=False)


class CollectorState(Base):
    """Whether a collector is enabled, for the meta collector."""

    __tablename__ = 'collector_states'

    name = sa.Column(sa.String(255), primary_key=True)
    enabled = sa.Column(sa.Boolean, nullable=False, server_default=sa.false())


class WriterFileState(Base):
    """What ``cloudkitty-writer`` wrote to one report file.

    One row per (scope, writer, month). Transient: without its row, a file
    is rebuilt from the rated data, so the table may be emptied at will.
    ``written_until`` is the end of the window the file covers; the body
    (every byte but the footer) is ``body_size`` bytes with SHA-256
    ``body_sha256``, and the whole file hashes to ``file_sha256`` once its
    footer is written (``NULL`` before). ``qty`` and ``total`` are the exact
    decimal text of the quantities and prices written; ``extra`` is the
    writer's own JSON state.
    """

    __tablename__ = 'writer_file_states'

    scope_id = sa.Column(sa.String(256), primary_key=True)
    writer = sa.Column(sa.String(64), primary_key=True)
    month = sa.Column(sa.DateTime, primary_key=True)
    written_until = sa.Column(sa.DateTime, nullable=False)
    qty = sa.Column(sa.String(128), nullable=False)
    total = sa.Column(sa.String(128), nullable=False)
    body_size = sa.Column(sa.BigInteger, nullable=False)
    body_sha256 = sa.Column(sa.String(64), nullable=False)
    file_sha256 = sa.Column(sa.String(64), nullable=True)
    extra = sa.Column(sa.Text, nullable=False, server_default='{}')
