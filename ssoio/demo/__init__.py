"""The one-command demo: development IdP, ssoio and a demo page in one process."""
