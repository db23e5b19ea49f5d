"""The node's /metrics, read by the Prometheus project's own OpenMetrics parser
(prometheus_client, which shares no code with Rogatory): every family parses, has the type the documentation gives, and
says what the exchange client_check.py made did.

Usage: metrics_check.py API_ADDR TOKEN PARTNER
"""

import sys
import urllib.error
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

addr, token, partner = sys.argv[1:4]
url = f"http://{addr}/metrics"


def fail(why):
    print(f"FAIL: {why}", file=sys.stderr)
    sys.exit(1)


try:
    urllib.request.urlopen(url, timeout=10)
    fail("/metrics answered without a token")
except urllib.error.HTTPError as e:
    if e.code != 401:
        fail(f"/metrics without a token answered {e.code}, not 401")

req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
with urllib.request.urlopen(req, timeout=10) as r:
    ctype = r.headers.get("Content-Type", "")
    text = r.read().decode("utf-8")
if not ctype.startswith("application/openmetrics-text; version=1.0.0"):
    fail(f"Content-Type {ctype!r}")

families = {f.name: f for f in text_string_to_metric_families(text)}
expected = {
    "rogatory_inbox_envelopes": "gauge",
    "rogatory_outbox_envelopes": "gauge",
    "rogatory_inbound_pending": "gauge",
    "rogatory_evidence_transfers_active": "gauge",
    "rogatory_evidence_transfers_waiting": "gauge",
    "rogatory_alerts": "gauge",
    "rogatory_key_history_statements": "gauge",
    "rogatory_partner_connections": "gauge",
    "rogatory_partner_queue_depth": "gauge",
    "rogatory_partner_in_flight": "gauge",
    "rogatory_partner_delivery_failures": "gauge",
    "rogatory_partner_key_age_seconds": "gauge",
    "rogatory_partner_held": "gauge",
    "rogatory_partner_key_state": "gauge",
    "rogatory_partner_settled": "counter",
    "rogatory_envelopes_received": "counter",
    "rogatory_envelopes_settled": "counter",
    "rogatory_delivery_seconds": "histogram",
    "rogatory_evidence_bytes": "counter",
    "rogatory_audit_entries_appended": "counter",
}
for name, kind in expected.items():
    if name not in families:
        fail(f"{name} is missing; got {sorted(families)}")
    if families[name].type != kind:
        fail(f"{name} is a {families[name].type}, not a {kind}")


def sample(family, **labels):
    for s in families[family].samples:
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    fail(f"no sample of {family} with {labels}")


if sample("rogatory_partner_settled", partner=partner) < 1:
    fail("the message sent to the partner is not counted as settled")
if sample("rogatory_envelopes_settled", outcome="accepted") < 1:
    fail("the partner's acceptance is not counted")
if sample("rogatory_outbox_envelopes", state="settled") < 1:
    fail("no settled envelope in the outbox")
if sample("rogatory_partner_key_state", partner=partner) != 1:
    fail("the partner's key state is not given")
def named(family, name, **labels):
    for s in families[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    fail(f"no sample {name} of {family} with {labels}")


count = named("rogatory_delivery_seconds", "rogatory_delivery_seconds_count")
if count < 1:
    fail("the delivery time of the message settled is not observed")
if named("rogatory_delivery_seconds", "rogatory_delivery_seconds_bucket", le="+Inf") != count:
    fail("the delivery histogram's +Inf bucket is not its count")
if named("rogatory_audit_entries_appended", "rogatory_audit_entries_appended_total") < 2:
    fail("the audit entries of the case opened and the message sent are not counted")
if named("rogatory_evidence_bytes", "rogatory_evidence_bytes_total", direction="fetched") != 0:
    fail("evidence bytes counted where none moved")
print(
    f"ok: /metrics parses with prometheus_client's OpenMetrics parser ({len(families)} families, "
    f"types as documented); it counts the message settled with {partner}; without a token, 401"
)
