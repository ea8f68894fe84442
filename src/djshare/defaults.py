"""Defaults the library and the command line share, importable without DataJoint."""

CAPTURE_SCHEMA = "djshare_export"  # where export captures live, on the data's server
