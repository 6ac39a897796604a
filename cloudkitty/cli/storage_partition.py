"""``cloudkitty-storage-partition``: split the rated data of a PostgreSQL
database partitioned by migration 0009 into time partitions.

Migration 0009 leaves the rows of a database that held rated data in the
``DEFAULT`` partition of each table (the former table). This command moves
them, one ``[storage_sqlalchemy] partition_interval`` at a time, into
partitions of their own, then creates the partitions ahead as the
processors do. Each interval is one transaction: the command can be
stopped at any moment and run again, and no row is ever lost or doubled
(see :mod:`cloudkitty.storage.v2.sqlalchemy.partitions`).
"""

import sys

from oslo_config import cfg

from cloudkitty import service
from cloudkitty import storage
from cloudkitty.storage.v2.sqlalchemy import partitions
from cloudkitty import timeutils


def main(argv=None):
    """Split the ``DEFAULT`` partitions; 1 when the rated data is not
    partitioned (not PostgreSQL, or not migrated to 0009 yet)."""
    conf = service.prepare_service(
        sys.argv[1:] if argv is None else argv, cfg.ConfigOpts())
    engine = storage.get_storage(conf).engine
    with engine.connect() as conn:
        partitioned = partitions.is_partitioned(conn)
    if not partitioned:
        print('the rated data is not partitioned: partitions are made on '
              'PostgreSQL, by `cloudkitty-dbsync upgrade` (migration 0009)')
        return 1
    options = conf.storage_sqlalchemy
    keeper = partitions.Partitions(engine, options.partition_interval,
                                   options.partitions_ahead)
    keeper.split_default(report=print)
    created = keeper.create_ahead(timeutils.utcnow())
    print(f'partitions ahead: {", ".join(created) or "all there"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
