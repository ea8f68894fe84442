"""Links between a local table and a source table (DataJoint 0.14 schemas)."""

from djshare.lines import require_dj014

require_dj014()
