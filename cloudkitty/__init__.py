"""Rating as a Service: collect cloud usage, price it, store and serve it."""

import warnings

# Libraries we import warn of their own deprecations at import time: eventlet
# (brought by oslo.messaging) with a plain Warning, cryptography through
# dnspython (brought by eventlet) with a UserWarning subclass, and more with
# each release. They tell an operator nothing and drown the one line a
# console script prints on a bad configuration. Every entry point (console
# scripts, the WSGI application) imports this package first, so these
# filters come before any of those imports. A deprecation warned of from our
# own modules (``cloudkitty.*``) still shows.
warnings.filterwarnings('ignore', message=r'(?s).*deprecat',
                        module=r'(?!cloudkitty(\.|$))')
warnings.filterwarnings('ignore', category=DeprecationWarning,
                        module=r'(?!cloudkitty(\.|$))')
