"""``treu ledger verify``: replay everything and check every invariant.

Each check is one query that returns the rows that break it (so an empty result is a pass), and
runs per tenant or over the whole database:

1. every transfer moves a positive amount between two different accounts of its own unit;
2. the sum of all postings per unit is zero (credits minus debits over every account);
3. every cached member balance equals the replay of its transfers;
4. every lot's remaining equals its amount minus its allocations, within 0..amount;
5. a member's active lots hold exactly their available balance, pending lots their pending
   balance, and open holds their held balance (points and wallet money alike);
6. allocations of a transfer never exceed it;
7. no balance is below its floor (negative only in the debt account);
8. points went into debt only by a return under a programme revision whose return policy is
   ``allow_negative``.
9. a member's stamps balance equals the stamps on their open stamp cards (``treu.stamps``).
10. a gift card's cached balance equals the replay of its transfers (``treu.wallet``).
10. every donation has its ``donate`` transfer of the same member, unit and amount, and every
    ``donate`` transfer its donation (``treu.donations``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text

from treu.programmes.service import load_revision
from treu.storage.uow import UnitOfWork

_CHECKS: dict[str, str] = {
    "transfer_shape": """
        SELECT t.id FROM transfers t
        JOIN accounts d ON d.id = t.debit_account_id
        JOIN accounts c ON c.id = t.credit_account_id
        WHERE (t.amount <= 0 OR t.debit_account_id = t.credit_account_id
           OR d.unit <> t.unit OR c.unit <> t.unit) {t}""",
    "postings_sum_to_zero": """
        SELECT unit FROM (
            SELECT a.unit AS unit, SUM(p.amount) AS net FROM (
                SELECT t.credit_account_id AS account_id, t.amount AS amount
                FROM transfers t WHERE 1 = 1 {t}
                UNION ALL
                SELECT t.debit_account_id, -t.amount FROM transfers t WHERE 1 = 1 {t}
            ) p JOIN accounts a ON a.id = p.account_id GROUP BY a.unit
        ) s WHERE net <> 0""",
    "cached_balance_equals_replay": """
        SELECT a.id FROM accounts a
        WHERE a.member_id IS NOT NULL {a} AND a.balance <>
            (SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE credit_account_id = a.id)
          - (SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE debit_account_id = a.id)""",
    "lot_remaining_equals_allocations": """
        SELECT l.id FROM lots l
        WHERE 1 = 1 {l} AND (l.remaining < 0 OR l.remaining > l.amount OR l.remaining <>
            l.amount - (SELECT COALESCE(SUM(amount), 0) FROM lot_allocations a
                        WHERE a.lot_id = l.id))""",
    "active_lots_equal_available": """
        SELECT a.member_id FROM accounts a
        WHERE a.kind = 'available' AND a.unit = 'points' AND a.member_id IS NOT NULL {a}
          AND a.balance <> (SELECT COALESCE(SUM(remaining), 0) FROM lots
             WHERE member_id = a.member_id AND unit = a.unit AND status = 'active')""",
    "pending_lots_equal_pending": """
        SELECT a.member_id FROM accounts a
        WHERE a.kind = 'pending' AND a.unit = 'points' AND a.member_id IS NOT NULL {a}
          AND a.balance <> (SELECT COALESCE(SUM(remaining), 0) FROM lots
             WHERE member_id = a.member_id AND unit = a.unit AND status = 'pending')""",
    "open_holds_equal_held": """
        SELECT a.member_id FROM accounts a
        WHERE a.kind = 'held' AND a.unit = 'points' AND a.member_id IS NOT NULL {a}
          AND a.balance <>
            (SELECT COALESCE(SUM(amount), 0) FROM holds
             WHERE member_id = a.member_id AND status = 'held')""",
    "open_wallet_holds_equal_held": """
        SELECT a.member_id FROM accounts a
        WHERE a.kind = 'held' AND a.unit = 'wallet' AND a.member_id IS NOT NULL {a}
          AND a.balance <>
            (SELECT COALESCE(SUM(amount_minor), 0) FROM wallet_holds
             WHERE member_id = a.member_id AND status = 'held')""",
    "gift_card_balance_equals_replay": """
        SELECT a.id FROM accounts a
        WHERE a.member_id IS NULL AND a.balance IS NOT NULL {a} AND (a.balance < 0 OR a.balance <>
            (SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE credit_account_id = a.id)
          - (SELECT COALESCE(SUM(amount), 0) FROM transfers WHERE debit_account_id = a.id))""",
    "allocations_within_transfer": """
        SELECT t.id FROM transfers t
        WHERE 1 = 1 {t} AND t.amount <
            (SELECT COALESCE(SUM(ABS(amount)), 0) FROM lot_allocations WHERE transfer_id = t.id)""",
    "stamps_equal_open_cards": """
        SELECT a.member_id FROM accounts a
        WHERE a.kind = 'available' AND a.unit = 'stamps' AND a.member_id IS NOT NULL {a}
          AND a.balance <> (SELECT COALESCE(SUM(stamps), 0) FROM stamp_cards
             WHERE member_id = a.member_id AND status = 'open')""",
    # a donation row and its transfer agree (member, unit, amount); no donate transfer without one
    "donations_match_transfers": """
        SELECT t.id FROM donations t LEFT JOIN transfers x ON x.id = t.transfer_id
        WHERE 1 = 1 {t} AND (x.id IS NULL OR x.kind <> 'donate' OR x.member_id <> t.member_id
          OR x.unit <> t.unit
          OR x.amount <> CASE WHEN t.unit = 'points' THEN t.points ELSE t.amount_minor END)""",
    "donate_transfers_have_donations": """
        SELECT t.id FROM transfers t
        WHERE t.kind = 'donate' {t}
          AND NOT EXISTS (SELECT 1 FROM donations d WHERE d.transfer_id = t.id)""",
    "balances_within_floor": """
        SELECT a.id FROM accounts a
        WHERE a.member_id IS NOT NULL {a}
          AND ((a.kind = 'debt' AND a.balance > 0) OR (a.kind <> 'debt' AND a.balance < 0))""",
}


@dataclass
class VerifyReport:
    checked: dict[str, int] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    transfers: int = 0
    lots: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_ledger(uow: UnitOfWork, *, tenant_id: str | None = None) -> VerifyReport:
    report = VerifyReport()
    params = {"tenant_id": tenant_id}
    scopes = {
        alias: (f"AND {alias}.tenant_id = :tenant_id" if tenant_id else "")
        for alias in ("t", "a", "l")
    }
    for name, sql in _CHECKS.items():
        rows = [str(r[0]) for r in uow.conn.execute(text(sql.format(**scopes)), params)]
        report.checked[name] = len(rows)
        if rows:
            report.problems[name] = rows[:20]
    _check_debt_policy(uow, report, params, scopes["t"])
    # table names below are constants of this module, never input
    count = "SELECT COUNT(*) FROM {table} z WHERE 1 = 1 " + (  # noqa: S608
        "AND z.tenant_id = :tenant_id" if tenant_id else ""
    )
    report.transfers = int(
        uow.conn.execute(text(count.format(table="transfers")), params).scalar_one()
    )
    report.lots = int(uow.conn.execute(text(count.format(table="lots")), params).scalar_one())
    return report


_DEBT_POSTINGS = """
    SELECT t.id, p.revision_id FROM transfers t
    JOIN accounts d ON d.id = t.debit_account_id AND d.kind = 'debt'
    LEFT JOIN activities r ON r.id = t.activity_id AND r.type = 'return'
    LEFT JOIN activities p ON p.id = r.purchase_id
    WHERE t.kind <> 'merge' {t}"""  # a merge moves a debt checked where it arose


def _check_debt_policy(
    uow: UnitOfWork, report: VerifyReport, params: dict[str, str | None], scope: str
) -> None:
    """A negative balance is allowed only where the purchase's return policy allowed it."""
    bad = []
    policies: dict[str, str] = {}
    for transfer_id, revision_id in uow.conn.execute(text(_DEBT_POSTINGS.format(t=scope)), params):
        if revision_id is None:
            bad.append(str(transfer_id))  # into debt, but not by a return
            continue
        if revision_id not in policies:
            policies[revision_id] = load_revision(uow, revision_id).document.returns.policy
        if policies[revision_id] != "allow_negative":
            bad.append(str(transfer_id))
    report.checked["negative_only_by_policy"] = len(bad)
    if bad:
        report.problems["negative_only_by_policy"] = bad[:20]
