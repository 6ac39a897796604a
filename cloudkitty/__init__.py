"""Rating as a Service: collect cloud usage, price it, store and serve it."""

import warnings

# eventlet comes in with oslo.messaging, and futurist (through tooz) or
# oslo.messaging import it when it is installed; its deprecation notice is a
# plain Warning, always printed, and tells an operator nothing: we never use
# eventlet. Filtered here, before any of those imports.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')
