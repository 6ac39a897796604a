"""Declarative base shared by every table of the service."""

from sqlalchemy import orm


class Base(orm.DeclarativeBase):
    """Base of every model; all tables live in ``Base.metadata``."""
