"""Inference on the maps: MNS masks, overlap tests, robustness and sensitivity.

``masks`` (meta-analytic, anatomical, user), ``overlap`` (the ROI test and the
thresholded-overlap test), ``robustness`` (contributions, jackknife, fail-safe N) and
``sensitivity`` (the reviewer's variants). Arrays and tables in, tables out: no file I/O.
"""
