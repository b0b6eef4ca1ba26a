"""Claims: a verdict for each of the review's claims, from the evidence of the results."""
