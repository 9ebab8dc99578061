"""crmpilot.privacy: keep personal data inside the process (redaction before any model call)."""

from crmpilot.privacy.redaction import DEFAULT_DETECTORS, Detector, Redaction, Redactor, iban_ok, luhn_ok

__all__ = ["Redactor", "Redaction", "Detector", "DEFAULT_DETECTORS", "luhn_ok", "iban_ok"]
