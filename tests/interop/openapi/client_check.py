"""A case-management system's view of a node: a client generated from spec/openapi.json by
openapi-python-client (which shares no code with Rogatory) opens a case, sends a message in it,
follows it until the partner's receipt is recorded, sends a batch, lists the cases, and gets the API's refusals
as the document describes them.

Usage: client_check.py PACKAGE_DIR API_ADDR TOKEN PARTNER REQUEST_JSON
"""

import json
import sys

sys.path.insert(0, sys.argv[1])

from rogatory_client import AuthenticatedClient, Client  # noqa: E402
from rogatory_client.api.cases import cases, case_one, new_case  # noqa: E402
from rogatory_client.api.messages import outbox_one, send, send_batch  # noqa: E402
from rogatory_client.api.status import document, status  # noqa: E402
from rogatory_client.models import (  # noqa: E402
    CaseSummary,
    CaseView,
    ErrorBody,
    NewCase,
    OutboxRow,
    SendBatch,
    SendBody,
    SendBodyBody,
    Sent,
    SentBatch,
    Status,
)

addr, token, partner, request_file = sys.argv[2:6]
api = AuthenticatedClient(base_url=f"http://{addr}", token=token, timeout=120)


def check(what, ok):
    if not ok:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


st = status.sync(client=api)
check("GET /v1/status answers a Status", isinstance(st, Status) and st.peers[0].agency == partner)

opened = new_case.sync(client=api, body=NewCase(kind="mla", to=partner, reference="CMS-2026-17"))
check("POST /v1/cases opens a case", isinstance(opened, CaseSummary) and opened.reference == "CMS-2026-17")

with open(request_file) as f:
    request = json.load(f)
sent = send.sync(
    client=api,
    body=SendBody(to=[partner], case=opened.case_id, type_="mla-request", body=SendBodyBody.from_dict(request)),
)
check("POST /v1/send queues the request in that case", isinstance(sent, Sent) and len(sent.queued) == 1)

row = outbox_one.sync(sent.queued[0].envelope_id, client=api, wait=60)
check(
    "GET /v1/outbox/{id}?wait=60 answers once the partner's receipt is recorded",
    isinstance(row, OutboxRow) and row.state == "delivered" and row.receipt.event == "accepted",
)

listed = cases.sync(client=api)
check("GET /v1/cases lists the case", any(c.case_id == opened.case_id for c in listed))

view = case_one.sync(opened.case_id, client=api)
check(
    "GET /v1/cases/{id} shows the message in the case's timeline",
    isinstance(view, CaseView) and [m.envelope_id for m in view.messages] == [sent.queued[0].envelope_id],
)

refused = send.sync_detailed(
    client=api,
    body=SendBody(to=["XZ.NOBODY"], case="new", type_="mla-request", body=SendBodyBody.from_dict(request)),
)
check(
    "a message to an agency that is not pinned is refused with 422 and an ErrorBody",
    refused.status_code == 422 and isinstance(refused.parsed, ErrorBody) and "pinned" in refused.parsed.error,
)

batch = send_batch.sync(
    client=api,
    wait=60,
    body=SendBatch(
        messages=[
            SendBody(to=[partner], case=opened.case_id, type_="mla-request", body=SendBodyBody.from_dict(request)),
            SendBody(to=["XZ.NOBODY"], case="new", type_="mla-request", body=SendBodyBody.from_dict(request)),
        ]
    ),
)
check(
    "POST /v1/send/batch?wait=60 delivers one message and refuses the other, each answered in order",
    isinstance(batch, SentBatch)
    and [r.status for r in batch.results] == [200, 422]
    and batch.results[0].sent.queued[0].state == "delivered"
    and "pinned" in batch.results[1].error,
)

anonymous = status.sync_detailed(client=Client(base_url=f"http://{addr}"))
check("a request without the token is refused with 401", anonymous.status_code == 401)

served = document.sync_detailed(client=Client(base_url=f"http://{addr}"))
check("GET /v1/openapi.json needs no token", served.status_code == 200)
