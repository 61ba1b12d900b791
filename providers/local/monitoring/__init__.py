"""Monitors on this machine: drift statistics, evaluations of logged traffic against a
reference dataset, their reports, and the `monitor` resource handler."""
