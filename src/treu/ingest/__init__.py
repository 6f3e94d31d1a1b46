"""Entry points that feed activities in from outside (message brokers), above the domain."""
