"""The audit log: who on the staff did what, when — written in the transaction of the change."""
