from setuptools import find_packages, setup

setup(
    name="pachs3gw",
    version="0.1.0",
    description="S3-compatible HTTP gateway to Pachyderm's versioned file system (PFS)",
    packages=find_packages(include=["pachs3gw", "pachs3gw.*"]) + ["twisted.plugins"],
    package_data={"pachs3gw.proto": ["*.proto", "*.pyi"]},
    python_requires=">=3.10",
    install_requires=[
        # The streaming request touches twisted.web's private channel
        # attributes: keep the range narrow, a canary test guards it.
        "twisted[tls]>=24.7,<27",
        "klein>=24.8",
        "grpcio>=1.85.1,<2",
        "protobuf>=7.35.1,<8",
        "txaio>=23.1",
        "defusedxml>=0.7.1",
        "attrs>=23.1",
        "zope.interface>=6.0",
        "crc32c>=2.4",
        "awscrt>=0.20",
        # Streaming (push) multipart/form-data parser for browser form uploads.
        "multipart>=1.2",
        "prometheus_client>=0.20",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            "grpcio-tools==1.85.1",
            "hypothesis>=6.100",
            "boto3>=1.36",
            "awscli>=1.36",
            "s3cmd==2.4.0",
            "minio>=7.2",
            "treq>=23.11",
            "requests>=2.31",
            "pytest-timeout>=2.3",
            # tests/test_typecheck.py; mypy pinned so a new release's checks
            # don't break the build (mypy-zope supports a narrow mypy range).
            "mypy==2.4.1",
            "mypy-zope>=1.0.17",
            "types-protobuf>=7.35,<8",
            "types-grpcio>=1.85,<2",
            "types-defusedxml>=0.7",
        ],
    },
    entry_points={},
)
