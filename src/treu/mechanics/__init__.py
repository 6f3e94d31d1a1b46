"""Programme mechanics around the points: where tiers, stamp cards, campaigns, referrals,
memberships and the wallet hook into enrolments and activities.

The activities and members use cases call three functions here, in their own transaction:

* :func:`treu.mechanics.service.standing` before the rules run: the member's tier and active
  membership plans, which rules and multipliers match on;
* :func:`treu.mechanics.service.earning_rules`: the programme's rules plus the rules its tiers and
  plans imply (a tier's earn multiplier is a multiplier rule);
* :func:`treu.mechanics.service.after_activity` / ``after_enrolment`` once the points are posted:
  each mechanic reacts (stamps, card completion, tier upgrade, surprise, referral conversion,
  cashback) and returns :class:`treu.mechanics.model.Effect` rows that are stored with the
  activity, shown in the member's history and returned to the till.

Each mechanic lives in its own package with the usual file roles; this package only composes
them, in a fixed order, so one activity's effects are deterministic.
"""
