"""The payments ledger (payments, refunds, receipts, the payments list) and the payment
provider interface; providers (card, bank transfer, at the door) are plugins. See
docs/payments.md."""
