"""pachs3gw: an S3-compatible gateway to Pachyderm's versioned file system."""

#: Kept equal to setup.py's ``version`` (tests/test_logs.py checks).
__version__ = "0.1.0"
