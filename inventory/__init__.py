"""Inventory pool: warehouses, SKUs, stock levels, the stock ledger and reservations."""
