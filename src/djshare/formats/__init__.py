"""DataJoint's formats (0.14, 2.x) as one axis beside the backends: what a format records about a table, read
and written without I/O. `lineage` is the first module here; the storage formats (`djshare.stores.formats`) move
in beside it (step 4 of the architecture plan, issue 14)."""
