"""Stand-in: see vae.py."""
