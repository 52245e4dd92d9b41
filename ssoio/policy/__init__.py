"""The policy: claims -> Principal -> Decision, pure and compiled once.

Import from the modules (``ssoio.policy.engine.Policy``, ``ssoio.policy.principal``);
this package module stays empty so the configuration can use the policy's parsers
without an import cycle.
"""
