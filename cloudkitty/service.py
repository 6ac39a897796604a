"""Start-up shared by every command: options, configuration files, logging."""

from oslo_config import cfg
from oslo_log import log

from cloudkitty import conf as ck_conf

PROJECT = 'cloudkitty'


def prepare_service(argv, conf):
    """Register every option on ``conf``, parse ``argv`` and set up logging.

    ``argv`` holds the command-line arguments without the program name
    (``--config-file FILE``, ``--config-dir DIR``, the logging options and
    whatever CLI options the caller registered on ``conf`` beforehand).
    Configuration files default to oslo.config's search for the
    ``cloudkitty`` project (``/etc/cloudkitty/cloudkitty.conf``, ...).

    Registering twice on the same ``conf`` is harmless, so a command may
    hand in ``oslo_config.cfg.CONF``, as the processor does for third-party
    collectors. Returns ``conf``.
    """
    ck_conf.register_all(conf)
    try:
        log.register_options(conf)
    except cfg.ArgsAlreadyParsedError:
        # Prepared before (tests, or a command run twice in one process):
        # forget the previous command line and configuration files.
        conf.clear()
        log.register_options(conf)
    conf(list(argv), project=PROJECT, validate_default_values=True)
    log.setup(conf, PROJECT)
    return conf
