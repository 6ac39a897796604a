"""Tables of the pyscripts rating module (created by migration 0005).

A script is a dated rule (:mod:`cloudkitty.rating.common`): valid over
``[start, end)``, with audit fields and a soft delete, so that the scripts
a past period was rated with stay readable. ``checksum`` is the sha512 hex
digest of ``data``, the script's source. Names are unique among live
scripts, which SQL cannot say with soft deletes: the data layer checks it,
serialised by the ``pyscripts_revision`` row every write updates first.
Timestamps are naive UTC.
"""

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy import orm

from cloudkitty.db import models
from cloudkitty.rating import common

# MySQL's TEXT stops at 64 KiB; a script may be longer.
SOURCE = sa.Text().with_variant(mysql.LONGTEXT(), 'mysql', 'mariadb')


class PyScript(common.DatedRuleColumns, models.Base):
    """A Python script run on the frames of the periods it is valid for."""

    __tablename__ = 'pyscripts_scripts'
    __table_args__ = (
        sa.UniqueConstraint('script_id', name='uq_pyscripts_scripts_uuid'),
        sa.Index('ix_pyscripts_scripts_validity', 'deleted', 'start'),
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    script_id = orm.mapped_column(sa.String(36), nullable=False)
    name = orm.mapped_column(sa.String(255), nullable=False)
    data = orm.mapped_column(SOURCE, nullable=False)
    checksum = orm.mapped_column(sa.String(128), nullable=False)


class PyScriptsRevision(common.RevisionColumns, models.Base):
    """One row counting the writes to ``pyscripts_scripts``
    (:class:`cloudkitty.rating.common.Revision`)."""

    __tablename__ = 'pyscripts_revision'
