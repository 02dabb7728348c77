"""Taobao/Tmall connector: TOP gateway client, trade mapping and the polling connector."""
