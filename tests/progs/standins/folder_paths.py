"""Stand-in for ComfyUI's folder_paths (tests only), as of mid-2025 (v0.3.4x): the user
directory (ComfyUI/user, or --user-directory) through get_user_directory() and
set_user_directory(); each user's files, comfy.settings.json among them, are in a folder of it
named after the user ("default" in single-user mode)."""
import os

user_directory = os.path.join(os.path.dirname(os.path.abspath(__file__)), "user")


def get_user_directory():
    return user_directory


def set_user_directory(path):
    global user_directory
    user_directory = path
