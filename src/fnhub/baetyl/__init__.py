"""Baetyl v1 compatibility: the configuration importer and its `fnhub import baetyl` command."""
