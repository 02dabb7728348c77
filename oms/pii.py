"""Masking of personal data (phones, names, addresses) for roles without the PII permission."""

PII_PERMISSION = "orders.view_pii"


def mask_phone(phone: str) -> str:
    """138****1234 for mainland mobiles; keep the last four digits of anything else."""
    digits = phone or ""
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) > 4:
        return "*" * (len(digits) - 4) + digits[-4:]
    return "*" * len(digits)


def mask_name(name: str) -> str:
    if not name:
        return ""
    if len(name) == 1:
        return "*"
    if name.isascii():
        return name[0] + "***"
    return name[0] + "*" * (len(name) - 1)


def mask_address(address: str) -> str:
    if not address:
        return ""
    keep = 2 if not address.isascii() else 4
    return address[:keep] + "****"


def can_view_pii(user) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(PII_PERMISSION))
