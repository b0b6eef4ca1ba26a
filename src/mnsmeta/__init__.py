"""mnsmeta: is the mirror neuron system a common substrate of SAD and BPD?

Coordinate-based meta-analysis (activation likelihood estimation) of social anxiety
disorder and borderline personality disorder studies, tested against mirror neuron
system masks.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mnsmeta")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = ["__version__"]
