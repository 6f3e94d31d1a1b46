"""The member's data rights (GDPR art. 15, 17, 20): export everything, erase the person."""
