"""HTTP and S3: routing, XML, errors, signatures, bodies, ranges, conditions.

This layer knows nothing of PFS or gRPC; it calls the backend interfaces in
:mod:`pachs3gw.s3.interfaces`.
"""
