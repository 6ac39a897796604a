"""Tables of the hashmap rating module (created by migration 0003).

Rows have an integer primary key used by the foreign keys and a UUID
(``service_id``, ``field_id``...) that is all the API ever shows. Mappings
are never deleted from the API, only marked (``deleted``, ``deleted_by``),
so that the rules a past period was rated with can still be read; their
uniqueness depends on validity windows, which SQL constraints cannot say,
so it is checked by :mod:`cloudkitty.rating.hash.db`, serialised by the
``hashmap_revision`` row that every write updates first.

Costs are ``NUMERIC(40, 28)`` (12 integer and 28 decimal digits), levels
``NUMERIC(48, 28)`` (they compare quantities, which can be large); SQLite
stores both as exact decimal text. Timestamps are naive UTC.
"""

import sqlalchemy as sa
from sqlalchemy import orm

from cloudkitty.db import models
from cloudkitty.db import types
from cloudkitty.rating import common

COST = types.money(types.PRICE_INTEGER_DIGITS)
LEVEL = types.money(types.QTY_INTEGER_DIGITS)
RULE_TYPES = ('flat', 'rate')


def _one_parent(table):
    return sa.CheckConstraint(
        '(service_id IS NULL) <> (field_id IS NULL)',
        name=f'ck_{table}_one_parent')


def _rule_type(table):
    return sa.CheckConstraint("type IN ('flat', 'rate')",
                              name=f'ck_{table}_type')


class HashMapService(models.Base):
    """A service: rules attached to it match the points of that type."""

    __tablename__ = 'hashmap_services'
    __table_args__ = (
        sa.UniqueConstraint('service_id', name='uq_hashmap_services_uuid'),
        sa.UniqueConstraint('name', name='uq_hashmap_services_name'),
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    service_id = orm.mapped_column(sa.String(36), nullable=False)
    name = orm.mapped_column(sa.String(255), nullable=False)


class HashMapField(models.Base):
    """A field of a service: rules on it match a key of the point's desc."""

    __tablename__ = 'hashmap_fields'
    __table_args__ = (
        sa.UniqueConstraint('field_id', name='uq_hashmap_fields_uuid'),
        sa.UniqueConstraint('service_id', 'name',
                            name='uq_hashmap_fields_service_name'),
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    field_id = orm.mapped_column(sa.String(36), nullable=False)
    service_id = orm.mapped_column(
        sa.Integer, sa.ForeignKey('hashmap_services.id', ondelete='CASCADE',
                                  name='fk_hashmap_fields_service'),
        nullable=False)
    name = orm.mapped_column(sa.String(255), nullable=False)


class HashMapGroup(models.Base):
    """A group of rules priced together (see rating.md)."""

    __tablename__ = 'hashmap_groups'
    __table_args__ = (
        sa.UniqueConstraint('group_id', name='uq_hashmap_groups_uuid'),
        sa.UniqueConstraint('name', name='uq_hashmap_groups_name'),
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    group_id = orm.mapped_column(sa.String(36), nullable=False)
    name = orm.mapped_column(sa.String(255), nullable=False)


def _parent_key(table, ondelete):
    """A nullable, indexed foreign key of a rule table to ``table``."""

    @orm.declared_attr
    def column(cls):
        target = table.removeprefix('hashmap_').rstrip('s')
        return orm.mapped_column(
            sa.Integer, sa.ForeignKey(
                f'{table}.id', ondelete=ondelete,
                name=f'fk_{cls.__tablename__}_{target}'),
            nullable=True, index=True)
    return column


class _RuleParents:
    """The service, field and group foreign keys of a rule table."""

    service_id = _parent_key('hashmap_services', 'CASCADE')
    field_id = _parent_key('hashmap_fields', 'CASCADE')
    # A group deleted without its rules leaves them without a group.
    group_id = _parent_key('hashmap_groups', 'SET NULL')


class HashMapMapping(_RuleParents, common.DatedRuleColumns, models.Base):
    """A mapping: a flat or rate cost for a service, or a field value.

    Valid over ``[start, end)`` (no end: open); ``deleted`` is when it was
    deleted, ``None`` while it is live.
    """

    __tablename__ = 'hashmap_mappings'
    __table_args__ = (
        sa.UniqueConstraint('mapping_id', name='uq_hashmap_mappings_uuid'),
        _one_parent('hashmap_mappings'),
        _rule_type('hashmap_mappings'),
        sa.Index('ix_hashmap_mappings_validity', 'deleted', 'start'),
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    mapping_id = orm.mapped_column(sa.String(36), nullable=False)
    value = orm.mapped_column(sa.String(255), nullable=True)
    type = orm.mapped_column(sa.String(4), nullable=False)
    cost = orm.mapped_column(COST, nullable=False)
    tenant_id = orm.mapped_column(sa.String(255), nullable=True)
    name = orm.mapped_column(sa.String(255), nullable=True)


class HashMapThreshold(_RuleParents, models.Base):
    """A threshold: a cost applying from a level of qty or a field value."""

    __tablename__ = 'hashmap_thresholds'
    __table_args__ = (
        sa.UniqueConstraint('threshold_id',
                            name='uq_hashmap_thresholds_uuid'),
        _one_parent('hashmap_thresholds'),
        _rule_type('hashmap_thresholds'),
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    threshold_id = orm.mapped_column(sa.String(36), nullable=False)
    level = orm.mapped_column(LEVEL, nullable=False)
    type = orm.mapped_column(sa.String(4), nullable=False)
    cost = orm.mapped_column(COST, nullable=False)
    tenant_id = orm.mapped_column(sa.String(255), nullable=True)


class HashMapRevision(common.RevisionColumns, models.Base):
    """One row counting the writes to the hashmap tables.

    Every write updates it first, which serialises writers (the uniqueness
    checks of the db layer read then insert) and lets a processor see with
    one cheap query whether its compiled rules are still current.
    """

    __tablename__ = 'hashmap_revision'
