"""Tiers: ordered levels members qualify for by points, spend or visits in a period."""
