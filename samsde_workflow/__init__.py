"""The pipeline's I/O layer: config validation, atomic tidy-table writes with provenance, plotting style, claims.

Kept apart from :mod:`samsde` (math only) so the core package never touches files.
"""
