"""Diff and sync: compare two datastores keyed by primary key and act on the differences."""
