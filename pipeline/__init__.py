"""The order pipeline: flows that cross apps (order entry, payment, cancel, shipping, channel following, sweeps)."""
