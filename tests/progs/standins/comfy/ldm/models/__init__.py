"""Stand-in: see comfy/__init__.py."""
