"""Socket.IO glue: connect authentication, event guards, token lifetime, rate limits."""
