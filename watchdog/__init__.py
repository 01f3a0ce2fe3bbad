"""tthc-watchdog: deadline monitoring and escalation for Vietnamese administrative-procedure cases."""

__version__ = "0.1.0"
