"""djshare: share DataJoint data between servers."""
