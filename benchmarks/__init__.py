"""cioguard benchmarks: ``python -m benchmarks`` (or ``make bench``); see ``benchmarks/README.md``.

One process measures, side by side, the blocking ``customerio`` SDK, Segment and PostHog, and
cioguard in each configuration, against a local HTTPS sink, and writes
``benchmarks/results/latest.json``.
"""
