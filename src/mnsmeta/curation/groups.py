"""The curation groups: the two disorders and the mirror neuron system reference set.

Kept apart from the records (which need numpy) so that the command line can offer the groups
without importing the scientific stack.
"""

GROUPS = {
    "SAD": "social anxiety disorder (social phobia, generalized social anxiety)",
    "BPD": "borderline personality disorder",
    "MNS": "mirror neuron system reference: action observation / imitation, healthy adults",
}

#: Groups whose analyses are tested against the MNS, and the MNS reference group itself.
DISORDER_GROUPS = ("SAD", "BPD")
MNS_REFERENCE = "MNS"
