"""Workflows: the commands' stages, and the only code that reads or writes ``results/``.

``results`` is the results contract (every file name, atomic writes, staged folders);
``run``, ``overlap``, ``robustness`` and ``claims`` run the stages and hand each other
objects; ``figures`` draws the PNG figures; ``provenance`` records versions, settings and
checksums.
"""
