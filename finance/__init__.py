"""Finance: immutable payment snapshots, settlement imports and reconciliation."""
