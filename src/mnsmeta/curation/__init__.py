"""Curation: the project's own files in ``coordinates/``, and the field's foci files, read,
checked and turned into experiments.

``records`` (curation records and typed-in foci), ``foci_files`` (the one type of every
foci file: ``sleuth`` for GingerALE text, ``nimads``, ``tables`` for CSV/TSV/Excel;
``inputs`` turns one into experiments), ``tsv`` (line-numbered reading), ``analyses`` (the
analysis plan and what each kind of analysis is), ``claims_file``, ``ledger``,
``candidates`` (the selection rule), ``flow`` (PRISMA counts), ``importing``, ``validate``,
and ``experiments``: the experiment model every later stage uses.
"""
