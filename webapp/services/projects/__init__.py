"""Projects and environments administration: create, rename, delete, clone, compare.

-> blueprint projects.py. ``admin`` holds the lifecycle (with what a deletion loses),
``clone`` copies an environment keeping every bucket, ``compare`` sets two side by side.
"""
