"""The exact-values interop test's pydantic side, shared by the peers' `consume-exact` mode.

The peer takes --count `Amounts` (a UUID and a list of Decimals) from --name, records for each the
JSON text that arrived and every value as pydantic read it (str(uuid), str(decimal)), and answers
on --name + ".out" with the same id and values followed by values of its own, which pydantic writes
as Python does: Decimals as strings (`str()`: "1E-7", "1E+30"), the UUID in lower case.
"""
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel


class Amounts(BaseModel):
    amount_id: UUID
    amounts: list[Decimal]


# Written by pydantic in Python's own forms: an exponent for the tiny and the round-large ones.
PEER_AMOUNTS = [
    Decimal("0.0000001"),
    Decimal("-12345678901234567890.123456789"),
    Decimal("1E+30"),
    Decimal("0.000001"),
]


def record(raw_body, amounts):
    """An entry of "received": the body as it came over the wire and the values pydantic read."""
    return {
        "type": "Amounts",
        "value": {
            "raw": raw_body.decode("utf-8", "backslashreplace"),
            "amount_id": str(amounts.amount_id),
            "amounts": [str(amount) for amount in amounts.amounts],
        },
    }


def answer(amounts):
    """The reply: the same id and values, then the peer's own."""
    return Amounts(amount_id=amounts.amount_id, amounts=amounts.amounts + PEER_AMOUNTS)
