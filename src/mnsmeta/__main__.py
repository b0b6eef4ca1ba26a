"""Allow ``python -m mnsmeta``."""

from mnsmeta.cli import main

main()
