"""The report: one self-contained HTML page rendered from a results folder.

A pure function of the results folder (:func:`render_report`); the page layout is a jinja2
template (``templates/``), its style sheet and script are files (``assets/``).
"""
