"""Dumps: a process's tasks written down whole, and read back.

``_bundle`` writes and reads the bundle, one JSON document with everything
a monitor shows (its format is versioned and described by
``bundle.schema.json``, for other tools too); ``_bundle_backend`` serves a
bundle's tasks behind the backend interface and ``_replay`` its loop's
health, so every read-only command runs on a bundle as on a live process;
``_files`` keeps a bounded directory of bundles and ``_auto`` writes one
when the loop has been blocked too long or deadlocks, with nobody connected.
"""
