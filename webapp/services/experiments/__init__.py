"""Experiments on multivariate features: lifecycle, enrolment, SDK events, results, pruning.

- ``lifecycle``: start and stop (audited), list and read experiments;
- ``enrolment``: the identify hot path's ``metadata.experiment`` (cached per revision);
- ``events`` / ``event_buffer`` / ``storing``: the SDK events batch, parsed on the request,
  buffered in process and written by a background thread;
- ``results``: per-variant counts, the statistical test and the verdict;
- ``retention``: prune per-identity rows of experiments stopped long ago.
"""
