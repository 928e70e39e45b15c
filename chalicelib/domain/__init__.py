"""The domain: the rules of accounts, catalog, orders, lines and connections."""
