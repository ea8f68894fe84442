"""Export: capture what an analysis fetched, close it over foreign keys, write it, restore and verify it."""
