"""Curation: the project's own files in ``coordinates/``, read, checked and turned into
experiments.

``records`` (curation records and typed-in foci), ``sleuth`` (GingerALE text), ``tsv``
(line-numbered reading), ``analyses`` (the analysis plan and what each kind of analysis
is), ``claims_file``, ``ledger``, ``candidates`` (the selection rule), ``flow`` (PRISMA
counts), ``importing``, ``validate``, and ``experiments``: the experiment model every later
stage uses.
"""
