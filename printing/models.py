"""Models of printing (none yet; the issue that builds this app adds them)."""
