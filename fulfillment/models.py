"""Models of fulfillment (none yet; the issue that builds this app adds them)."""
