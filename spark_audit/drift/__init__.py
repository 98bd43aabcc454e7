"""Drift: pure statistics over profiles (``stats``) and profile comparison (``compare``)."""
