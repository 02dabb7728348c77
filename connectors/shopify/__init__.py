"""Shopify Admin REST connector: HTTP client, order mapping and the Connector implementation."""
