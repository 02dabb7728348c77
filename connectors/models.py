"""Models of connectors (none yet; the issue that builds this app adds them)."""
