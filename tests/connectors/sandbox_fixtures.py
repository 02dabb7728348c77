"""Helpers the connector tests share for driving a platform sandbox directly."""

from datetime import datetime

from gateway.sandbox import Sandbox


def add_order(sandbox: Sandbox, at: datetime, **kwargs) -> dict:
    """Generate one order as of ``at`` (the sandbox clock stays pinned there) and store it without a push."""
    sandbox.set_clock(at)
    order = sandbox.generate_order(**kwargs)
    sandbox.put_order(order, push=False)
    return order
