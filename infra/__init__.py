"""LiveDrop's AWS deployment (CDK v2 + Chalice's construct)."""
