"""Several ssoio nodes as one: Redis pub/sub for security actions, shared state."""
