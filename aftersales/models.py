"""Models of aftersales (none yet; the issue that builds this app adds them)."""
