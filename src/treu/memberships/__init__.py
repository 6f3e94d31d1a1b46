"""Paid memberships: plans, status from reported payments, perks, the annual dividend."""
