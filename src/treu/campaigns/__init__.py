"""Campaign mechanics beyond the rules: welcome gift, launch bonus, anniversaries, surprises."""
