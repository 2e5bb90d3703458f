"""Build and push module images through the Docker Engine API (Docker or ``podman system service``).

Importing this package never imports the Docker SDK or rich; only :class:`Engine` methods do.

- ``edgegen.images.plan.plan_targets`` — the images a template needs (minus BYPASS_MODULES), rendered by
  genconfig's code (not re-exported here: it imports the generator's renderer)
- :func:`build_image`, :func:`push_image` — one image, progress through callbacks
- :func:`registries_from_env`, :func:`registry_credentials_for_manifest`, :class:`Masker` — credentials
- :func:`record_digests`, :func:`load_digests`, :func:`pin_manifest` — ``genconfig --pin-digests``
"""

from edgegen.images.build import BuildEvent, BuildResult, build_image
from edgegen.images.buildoptions import BuildOptions, parse_build_options
from edgegen.images.digests import (
    DIGEST_FILE,
    PushedDigest,
    default_digest_file,
    load_digests,
    pin_manifest,
    record_digests,
)
from edgegen.images.engine import Engine
from edgegen.images.errors import ImageError
from edgegen.images.push import PushEvent, PushResult, push_image
from edgegen.images.registries import (
    Masker,
    Registry,
    apply_registry_credentials,
    find_registry,
    image_registry,
    registries_from_env,
    registry_credentials_for_manifest,
)

__all__ = [
    "DIGEST_FILE",
    "BuildEvent",
    "BuildOptions",
    "BuildResult",
    "Engine",
    "ImageError",
    "Masker",
    "PushEvent",
    "PushResult",
    "PushedDigest",
    "Registry",
    "apply_registry_credentials",
    "build_image",
    "default_digest_file",
    "find_registry",
    "image_registry",
    "load_digests",
    "parse_build_options",
    "pin_manifest",
    "push_image",
    "record_digests",
    "registries_from_env",
    "registry_credentials_for_manifest",
]
