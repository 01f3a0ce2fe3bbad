"""tthc-watchdog: deadline watching and escalation for Vietnamese administrative cases."""

__version__ = "0.1.0"
