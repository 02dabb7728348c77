"""Douyin Shop (抖店 / jinritemai) connector: open-platform client, order mapping and push verification."""
