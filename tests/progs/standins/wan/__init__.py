"""Stand-in for the Wan2.1 repository package (tests only): see modules/vae.py."""
