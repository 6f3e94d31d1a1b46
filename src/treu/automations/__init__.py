"""Automations: trigger + audience + action + timing, at most once per member and occasion."""
