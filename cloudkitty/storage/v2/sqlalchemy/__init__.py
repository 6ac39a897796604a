"""The ``sqlalchemy`` storage backend (entry point ``sqlalchemy``)."""

from cloudkitty.storage.v2.sqlalchemy.backend import SQLAlchemyStorage

__all__ = ['SQLAlchemyStorage']
