"""Tenant API keys: scopes, hashing, look-up by key id (the API's principals)."""
