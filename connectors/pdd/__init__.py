"""Pinduoduo (PDD) connector: open-platform gateway client, order mapping and the polling connector."""
