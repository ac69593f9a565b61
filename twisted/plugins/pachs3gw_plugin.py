"""twistd plugin: ``twistd -n pachs3gw --port 30600``.

Kept tiny and lazy: twistd imports every plugin module to list them, so the
gateway itself is imported only when this plugin is chosen.
"""

from twisted.application.service import ServiceMaker

pachs3gw = ServiceMaker(
    "pachs3gw",
    "pachs3gw.tap",
    "S3-compatible gateway to Pachyderm PFS",
    "pachs3gw",
)
