"""The cases, one module per category; importing this package registers them in order."""

from adversarial.cases import accounting, auth, bad_input, disk_full, faults, isolation

__all__ = ["accounting", "auth", "bad_input", "disk_full", "faults", "isolation"]
