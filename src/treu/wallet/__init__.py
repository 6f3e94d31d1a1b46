"""The wallet: store credit, cashback and gift cards as money in the ledger."""
