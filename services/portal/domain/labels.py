"""Display names of the services' codes (modes, statuses, kinds, fields ...).

The English names here are gettext msgids (marked with `N_` for `pybabel extract -k N_`);
the Chinese text lives in `locale/zh_CN/LC_MESSAGES/messages.po`.
"""

from __future__ import annotations

from shared.regions import TIANJIN_DISTRICTS


def N_(message: str) -> str:  # noqa: N802 - the gettext marker's conventional name
    return message


LABELS: dict[str, dict[str, str]] = {
    "mode": {
        "assignment": N_("Assignment"),
        "exclusive_licence": N_("Exclusive licence"),
        "sole_licence": N_("Sole licence"),
        "non_exclusive_licence": N_("Non-exclusive licence"),
        "open_licence": N_("Open licence"),
        "equity": N_("Equity contribution"),
    },
    "listing_status": {
        "listed": N_("Listed"),
        "negotiating": N_("Negotiating"),
        "converted": N_("Converted"),
        "withdrawn": N_("Withdrawn"),
        "lapsed": N_("Lapsed"),
        "unlisted": N_("Not in the pool"),
    },
    "legal_status": {
        "pending": N_("Pending"),
        "granted": N_("Granted"),
        "lapsed": N_("Lapsed"),
        "expired": N_("Expired"),
        "invalidated": N_("Invalidated"),
        "withdrawn": N_("Withdrawn"),
        "rejected": N_("Rejected"),
    },
    "patent_type": {
        "invention": N_("Invention"),
        "utility_model": N_("Utility model"),
        "design": N_("Design"),
        "pct_invention": N_("PCT invention"),
        "pct_utility_model": N_("PCT utility model"),
    },
    "org_kind": {
        "university": N_("University"),
        "institute": N_("Research institute"),
        "soe": N_("State-owned enterprise"),
        "sme": N_("SME"),
        "enterprise": N_("Enterprise"),
        "other": N_("Other"),
    },
    "role": {
        "sme": N_("SME"),
        "supplier": N_("Patent owner"),
        "district_bureau": N_("District IP bureau"),
        "city_bureau": N_("City IP bureau"),
        "admin": N_("Administrator"),
    },
    "lead_status": {
        "open": N_("Awaiting reply"),
        "accepted": N_("Accepted"),
        "declined": N_("Declined"),
        "withdrawn": N_("Withdrawn"),
    },
    "need_status": {"open": N_("Open"), "closed": N_("Closed")},
    "confidence": {
        "strong": N_("Strong match"),
        "possible": N_("Possible match"),
        "weak": N_("Weak match"),
    },
    "plan_status": {
        "met": N_("Met"),
        "on_track": N_("On track"),
        "at_risk": N_("At risk"),
        "behind": N_("Behind"),
        "no_target": N_("No target"),
        "no_data": N_("No data yet"),
    },
    "deal_kind": {
        "assignment": N_("Assignment"),
        "licence": N_("Licence"),
        "equity": N_("Equity contribution"),
        "pledge": N_("Pledge"),
    },
    "upload_status": {
        "accepted": N_("Accepted"),
        "updated": N_("Updated"),
        "unchanged": N_("Unchanged"),
        "rejected": N_("Rejected"),
        "queued": N_("Queued"),
        "running": N_("Running"),
        "done": N_("Done"),
        "failed": N_("Failed"),
    },
    "field": {
        "application_number": N_("Application number"),
        "publication_number": N_("Publication number"),
        "title": N_("Patent title"),
        "abstract": N_("Abstract"),
        "claims": N_("Claims"),
        "ipc_codes": N_("IPC codes"),
        "patentees": N_("Patentees"),
        "inventors": N_("Inventors"),
        "application_date": N_("Filing date"),
        "grant_date": N_("Grant date"),
        "legal_status": N_("Legal status"),
        "body": N_("Whole row"),
        "file": N_("File"),
    },
    "record": {
        "line_id": N_("Line"),
        "deal_id": N_("Deal"),
        "application_number": N_("Application number"),
        "industry": N_("Industry"),
        "kind": N_("Kind"),
        "licence_type": N_("Licence type"),
        "status": N_("Status"),
        "effective_date": N_("Effective date"),
        "evidence_number": N_("Evidence number"),
        "supplier_org_id": N_("Supplier (id)"),
        "recipient_org_id": N_("Recipient (id)"),
        "recipient_name": N_("Recipient"),
        "recipient_district": N_("Recipient district"),
        "counts": N_("Counts"),
        "repeat_of_deal_id": N_("Repeat of deal"),
        "first_listed_at": N_("First pooled"),
        "listing_id": N_("Listing"),
        "owner_district": N_("Owner district"),
        "amount": N_("Amount"),
        "received_on": N_("Received on"),
        "year": N_("Year"),
        "value": N_("Value"),
    },
}

# Why a field is usually rejected, said in plain words beside the service's own reason.
FIELD_HINTS: dict[str, str] = {
    "application_number": N_(
        "Check the application number: 12 digits, a dot and the check digit, e.g. 202110123456.7"
    ),
    "ipc_codes": N_("Check the IPC codes: e.g. H01M 10/0525; separate several with ;"),
    "title": N_("The title is required (2-500 characters)"),
    "patentees": N_("Name at least one patentee; your organisation must be among them"),
    "application_date": N_("Dates are written YYYY-MM-DD and must agree with the number's year"),
    "grant_date": N_("Dates are written YYYY-MM-DD"),
    "legal_status": N_("Legal status: granted, pending, lapsed, expired, invalidated ..."),
}


def label(value: object, group: str) -> str:
    from services.portal.i18n import gettext

    if value is None:
        return ""
    msg = LABELS.get(group, {}).get(str(value))
    return gettext(msg) if msg else str(value)


def field_base(field: str) -> str:
    """'ipc_codes[0]' -> 'ipc_codes'; 'patents[3].title' -> 'title'."""
    base = field.rsplit(".", 1)[-1]
    return base.split("[", 1)[0]


def field_label(field: str) -> str:
    return label(field_base(field), "field")


def field_hint(field: str) -> str:
    from services.portal.i18n import gettext

    msg = FIELD_HINTS.get(field_base(field))
    return gettext(msg) if msg else ""


def district_name(key: str | None) -> str:
    """District names are Chinese place names in both languages (as on a map of Tianjin)."""
    if not key:
        return ""
    return TIANJIN_DISTRICTS.get(key, key)
