"""The ``mnsmeta`` command line: parse, call a workflow, print.

The work is in :mod:`mnsmeta.workflows` (:mod:`~mnsmeta.workflows.stages` for the pipeline's
commands). The commands live in :mod:`.curation` (fetch, validate, studies, import, export)
and :mod:`.analyses` (ale, run, overlap, robustness, specificity, claims, report); the options
they share in :mod:`.options`. Heavy modules (NiMARE, nilearn, numba, pandas) are imported
inside the commands that need them, so that ``--help`` and the quick commands answer at once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from mnsmeta import __version__
from mnsmeta.cli import analyses, curation
from mnsmeta.errors import MnsmetaInputError, filesystem_message

LGR = logging.getLogger("mnsmeta")
DEFAULT_COORDINATES = Path("coordinates")


class _Group(click.Group):
    """Catch user errors once: one clear message on stderr, non-zero exit, no traceback.

    Input problems (``MnsmetaInputError``) and file system failures (``OSError``: a folder
    that cannot be written, a full disk...) are the user's to fix; anything else is a bug
    and shows its traceback with ``--debug``.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (MnsmetaInputError, OSError) as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            text = str(error) if isinstance(error, MnsmetaInputError) else None
            click.secho(f"error: {text or filesystem_message(error)}", fg="red", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted: nothing was left half-written", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnsmeta")
@click.option("-v", "--verbose", count=True, help="More messages (-vv for debugging detail).")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of short error messages.")
@click.option(
    "--coordinates",
    "coordinates_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("MNSMETA_COORDINATES", str(DEFAULT_COORDINATES)),
    show_default="coordinates/, or $MNSMETA_COORDINATES",
    help="The curation folder (records/ and manual/).",
)
@click.pass_context
def main(ctx, verbose, debug, coordinates_dir):
    """Meta-analysis of SAD and BPD fMRI studies against the mirror neuron system.

    \b
    The usual path:
      mnsmeta fetch              get Neurosynth 0.7 and NeuroQuery 1 (verified, cached)
      mnsmeta validate           check every file in coordinates/
      mnsmeta studies -g SAD     the experiments an analysis of SAD would use
      mnsmeta run                every ALE analysis, its maps and tables, the MNS tests
      mnsmeta overlap            the MNS overlap tests again (other mask, more permutations)
      mnsmeta robustness         contributions, jackknife, fail-safe N, sensitivity
      mnsmeta specificity        the subtractions in the claim regions, with power
      mnsmeta claims             a verdict for each of the review's claims
      mnsmeta report             everything on one self-contained HTML page
      mnsmeta ale my_foci.txt    ALE of your own foci (Sleuth, NIMADS, table), in one command
      mnsmeta import paper.txt -g BPD   add foci typed from a paper (Sleuth, table)
      mnsmeta export -g SAD -o sad.txt  the exact foci, for GingerALE or NiMARE

    Databases are cached in $MNSMETA_DATA_DIR (default ~/.cache/mnsmeta); set
    $MNSMETA_DATA_MIRROR to copy them from a local folder instead of downloading.
    Every output file is explained in results/README.md.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    ctx.obj = {"debug": debug, "coordinates": coordinates_dir}


for _command in (
    curation.fetch,
    curation.validate,
    curation.studies,
    analyses.ale_command,
    analyses.run,
    analyses.overlap,
    analyses.robustness,
    analyses.specificity,
    analyses.claims,
    curation.import_,
    curation.export,
    analyses.report,
):
    main.add_command(_command)
