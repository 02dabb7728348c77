"""After-sales tickets: returns, refunds, exchanges, resends and their SLA (grows in later issues)."""
