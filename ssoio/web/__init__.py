"""HTTP routes (Starlette): health, the server API, and (later) browser login."""
