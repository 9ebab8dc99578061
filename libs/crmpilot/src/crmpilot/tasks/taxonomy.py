"""The default ticket taxonomy: closed vocabularies a classification may use.

Every category carries a description; the local provider classifies zero-shot
from these descriptions, and the CRM's restricted picklist holds the same values,
so a model answer outside the vocabulary can never reach a CRM field.
"""

from __future__ import annotations

from typing import Literal, get_args

from crmpilot.llm.base import Label

__all__ = [
    "DEFAULT_CATEGORIES",
    "PRIORITIES",
    "SENTIMENTS",
    "Category",
    "Priority",
    "Sentiment",
    "category_names",
    "queue_for",
]


Category = Label
"""A ticket category: its name, what it covers (the local model reads it) and the queue it routes to."""


DEFAULT_CATEGORIES: tuple[Category, ...] = (
    Category("Billing", "invoice, charge, billing statement, fee, subscription price, overcharged", "billing"),
    Category("Payments", "card payment declined, payment failed, transfer pending, top up, direct debit", "billing"),
    Category("Refund", "refund request, money back, return the payment, reimbursement", "billing"),
    Category(
        "Account Access", "cannot log in, password reset, locked account, two-factor code, verification", "accounts"
    ),
    Category(
        "Technical Issue",
        "app crashes, error message, website down, slow, not loading, integration broken",
        "technical",
    ),
    Category(
        "Shipping & Delivery", "order not delivered, tracking, late shipment, wrong address, lost parcel", "logistics"
    ),
    Category("Order Change", "change or cancel an order, modify quantity, update delivery date", "logistics"),
    Category("Cancellation", "cancel subscription, close account, terminate contract, stop service", "retention"),
    Category("Product Question", "how does the product work, feature question, pricing plans, compatibility", "sales"),
    Category("Complaint", "unhappy with service, bad experience, rude agent, formal complaint", "escalations"),
    Category(
        "Security & Fraud",
        "unauthorized transaction, stolen card, phishing, suspicious activity, compromised account",
        "security",
    ),
    Category("Other", "anything that fits no other category", "general"),
)

Priority = Literal["Low", "Medium", "High", "Urgent"]
Sentiment = Literal["negative", "neutral", "positive"]

PRIORITIES: tuple[str, ...] = get_args(Priority)
SENTIMENTS: tuple[str, ...] = get_args(Sentiment)


def category_names(categories: tuple[Category, ...] = DEFAULT_CATEGORIES) -> tuple[str, ...]:
    return tuple(c.name for c in categories)


def queue_for(name: str, categories: tuple[Category, ...] = DEFAULT_CATEGORIES) -> str:
    """The routing queue of category ``name``; ``KeyError`` if it is not in the taxonomy."""
    for c in categories:
        if c.name == name:
            return c.queue
    raise KeyError(name)
