"""Fulfilment: routing, shipments, waves, packing, carriers and the warehouse kanban (grows in later issues)."""
