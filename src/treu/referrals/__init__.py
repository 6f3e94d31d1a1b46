"""Referrals: codes, conversion on a qualifying first purchase, fraud holds."""
