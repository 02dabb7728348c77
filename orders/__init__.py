"""Order core: stores, orders, lines, the order state machine and its event history."""
