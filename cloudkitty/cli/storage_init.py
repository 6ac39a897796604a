"""``cloudkitty-storage-init``: create what the storage backend needs."""

import sys

from oslo_config import cfg

from cloudkitty import service
from cloudkitty import storage


def main(argv=None):
    """Initialise the backend named by ``[storage] backend``."""
    conf = service.prepare_service(
        sys.argv[1:] if argv is None else argv, cfg.ConfigOpts())
    storage.get_storage(conf).init()
    print(f'storage backend {conf.storage.backend!r} initialised')
    return 0


if __name__ == '__main__':
    sys.exit(main())
