"""Rating as a Service: collect cloud usage, price it, store and serve it."""
