"""Experiments as functions: settings in, tidy tables and claims out (no file I/O)."""
