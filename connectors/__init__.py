"""Channel connectors: one module per platform, the inbox, polling, webhooks and sandboxes (grows in later issues)."""
