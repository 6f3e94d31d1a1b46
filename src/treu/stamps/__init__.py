"""Stamp cards: stamps per visit or per unit, a voucher when a card is full."""
