#!/usr/bin/env python3
"""The console in a real browser (headless Chromium driven over WebDriver by Selenium) against
two real nodes: a clerk at XA drafts an MLA request with a missing element and is shown what is
missing as she types, completes it, and sends it for approval; a prosecutor approves it; XB's
console shows it arriving; XB registers it and asks for more information; XA answers; both
consoles show the same history. Then the security checks: a form without the CSRF token, a
foreign Host header, a form posted from a page of another origin and the console framed by one
are refused, and no page loads anything from outside the node.

Between them: XB adds an evidence file through its case page (uploaded, hashed and sealed as it
arrives) and sends its manifest; XA's console shows it fetched and verified, and the file
downloaded through XA's page is the one XB added; each side exports its bundle of the case for an
auditor through the audit page, and an auditor signed in at XA verifies both in the console.

The prosecutor also opens an extradition from XA's console, and XB reports its next stage from
the stages its page offers; the partners page shows each partner's card with its root
fingerprint.

    browser.py XA_URL XB_URL CLERK_TOKEN PROSECUTOR_TOKEN XB_TOKEN AUDITOR_TOKEN AUDITOR_CARD
"""

import hashlib
import http.server
import os
import tempfile
import re
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                        WebDriverException)
from selenium.webdriver.support.ui import Select
from selenium.webdriver.support.ui import WebDriverWait as _Wait


def WebDriverWait(d, within, poll_frequency=0.2):
    """Waits, reading the page again while it is being replaced (an element read as the page
    goes is stale, or no longer in the document)."""
    return _Wait(d, within, poll_frequency=poll_frequency,
                 ignored_exceptions=(NoSuchElementException, StaleElementReferenceException,
                                     WebDriverException))

xa, xb, clerk, prosecutor, xb_token, auditor, auditor_card = sys.argv[1:8]
work = tempfile.mkdtemp()
checks = 0


def ok(what):
    global checks
    checks += 1
    print(f"ok: {what}")


def browser():
    o = Options()
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600"]:
        o.add_argument(a)
    o.binary_location = "/usr/bin/chromium"
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def sign_in(d, base, token, lang="en"):
    d.delete_all_cookies()
    d.get(base + "/")
    assert d.current_url.endswith("/login"), d.current_url
    d.find_element(By.ID, "token").send_keys(token)
    Select(d.find_element(By.ID, "lang")).select_by_value(lang)
    d.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    try:
        WebDriverWait(d, 10).until(lambda d: d.current_url.rstrip("/") == base)
    except Exception:
        print(f"FAIL: sign-in at {base}: now at {d.current_url}:\n{d.page_source[:2000]}")
        raise


def text(d, css):
    return d.find_element(By.CSS_SELECTOR, css).text


def wait_for(d, url, css, want, within=30):
    """Loads url again until the element css contains want."""
    def seen(d):
        d.get(url)
        found = d.find_elements(By.CSS_SELECTOR, css)
        return any(want in e.text for e in found)
    WebDriverWait(d, within, poll_frequency=0.5).until(seen)


def shot(d, name):
    """With ROGATORY_CONSOLE_SHOTS=DIR, keeps a screenshot of the page (for a person to look at)."""
    where = os.environ.get("ROGATORY_CONSOLE_SHOTS")
    if where:
        os.makedirs(where, exist_ok=True)
        d.get_screenshot_as_file(os.path.join(where, name + ".png"))


def outside_resources(d, base):
    """URLs the page loaded from anywhere but the node, and src/href attributes pointing out."""
    loaded = d.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) { return e.name; })")
    out = [u for u in loaded if not u.startswith(base)]
    html = d.page_source
    out += re.findall(r'(?:src|href|action)="((?:https?:)?//[^"]*)"', html)
    return [u for u in out if not u.startswith(base)]


def labelled(d):
    """Form controls without a label."""
    return d.execute_script("""
        return Array.from(document.querySelectorAll('input, select, textarea'))
          .filter(function (e) { return e.type !== 'hidden' && e.labels.length === 0; })
          .map(function (e) { return e.name || e.id; });""")


a = browser()
b = browser()
try:
    # --- XA: a clerk drafts the request -------------------------------------------------------
    sign_in(a, xa, clerk)
    assert "Today" in text(a, "h1"), text(a, "h1")
    ok("the clerk signed in with her own token; the session is an HttpOnly cookie")
    cookie = [c for c in a.get_cookies() if c["name"] == "rogatory_console"][0]
    assert cookie["httpOnly"] and cookie.get("sameSite") == "Strict", cookie
    a.get(xa + "/new")
    fill = {
        "requesting_name": "Central Authority of XA",
        "requested_name": "Central Authority of XB",
        "instrument": "UNTOC",
        "subject": "Online sexual exploitation of children",
        "facts": "An account in XB paid for livestreamed abuse.",
        "offence.0": "Sexual exploitation of a child",
        "legal_classification.0": "Criminal Code of XA, s. 227",
        "iccs.0": "030221",
        "victim.0": "Child 1",
        "measure_description.0": "Subscriber data of the account",
        "target.0": "user_4471@mail.example",
        "language": "en",
    }
    Select(a.find_element(By.ID, "legal_kind")).select_by_value("treaty")
    Select(a.find_element(By.ID, "proceedings_kind")).select_by_value("investigation")
    Select(a.find_element(By.ID, "age_band.0")).select_by_value("6-11")
    Select(a.find_element(By.ID, "gender.0")).select_by_value("female")
    Select(a.find_element(By.ID, "measure.0")).select_by_value("subscriber-data")
    for k, v in fill.items():
        a.find_element(By.ID, k).send_keys(v)
    # A second offence, added with the form's button; its ICCS code is wrong at first.
    a.find_element(By.CSS_SELECTOR, "button[data-add='offence']").click()
    a.find_element(By.ID, "offence.1").send_keys("Extortion by threat to publish images")
    a.find_element(By.ID, "legal_classification.1").send_keys("Criminal Code of XA, s. 312")
    a.find_element(By.ID, "iccs.1").send_keys("12")
    WebDriverWait(a, 10).until(lambda d: "offences[1].iccs" in text(d, "#problems"))
    a.find_element(By.ID, "iccs.1").clear()
    a.find_element(By.ID, "iccs.1").send_keys("0204")
    # The purpose is left out: the page says so as she types, before anything is sent.
    WebDriverWait(a, 10).until(lambda d: "1 element(s) missing" in text(d, "#problems"))
    problems = text(a, "#problems")
    assert "purpose" in problems, problems
    ok(f"what is missing or wrong is shown as the clerk types, a second offence's ICCS code included: {problems.splitlines()[-1]!r}")
    assert labelled(a) == [], labelled(a)
    ok("every control of the request form has a label")
    # Sending it anyway is refused with the same words, the form kept as typed.
    a.find_element(By.CSS_SELECTOR, "#new-request button[type=submit]").click()
    WebDriverWait(a, 10).until(lambda d: "1 element(s) missing" in text(d, "#problems") and "purpose" in text(d, "#problems"))
    assert a.find_element(By.ID, "subject").get_attribute("value") == fill["subject"]
    ok("sending an incomplete request is refused, the form kept as typed")
    a.find_element(By.ID, "purpose").send_keys("To identify the suspect and find the children")
    WebDriverWait(a, 10).until(lambda d: "Nothing is missing" in text(d, "#problems"))
    a.find_element(By.CSS_SELECTOR, "#new-request button[type=submit]").click()
    WebDriverWait(a, 10).until(lambda d: "/drafts" in d.current_url)
    WebDriverWait(a, 10).until(lambda d: "waiting for an issuing authority" in text(d, ".notice"))
    assert "awaiting-approval" in text(a, "#drafts")
    ok("complete, it is kept as a draft waiting for an issuing authority")
    shot(a, "drafts")

    # --- XA: the prosecutor approves -----------------------------------------------------------
    sign_in(a, xa, prosecutor)
    a.get(xa + "/drafts")
    a.find_element(By.XPATH, "//form[contains(@action,'/approve')]/button").click()
    WebDriverWait(a, 10).until(lambda d: "/cases/" in d.current_url)
    case = text(a, "#case-id")
    WebDriverWait(a, 10).until(lambda d: "Approved and sent" in text(d, ".notice"))
    ok(f"the prosecutor approved it; case {case[:8]}… opened")

    # --- XB: it arrives; registered, then more information asked -------------------------------
    sign_in(b, xb, xb_token)
    wait_for(b, xb + "/inbox", "#inbox", "mla-request")
    b.find_element(By.CSS_SELECTOR, f"#inbox a[href='/cases/{case}']").click()
    WebDriverWait(b, 10).until(lambda d: text(d, "#status") == "received")
    ok("XB's console shows the request arriving, in its inbox and as a received case")
    b.find_element(By.ID, "registered-reference").send_keys("XB-MLA-2026-77")
    b.find_element(By.CSS_SELECTOR, "button[data-status='registered']").click()
    WebDriverWait(b, 10).until(lambda d: text(d, "#status") == "registered")
    b.find_element(By.ID, "more-information-requested-items").send_keys("The dates of the payments")
    b.find_element(By.CSS_SELECTOR, "button[data-status='more-information-requested']").click()
    WebDriverWait(b, 10).until(lambda d: text(d, "#status") == "more-information-requested")
    ok("XB registered it and asked for more information, from the buttons its state allows")

    # --- XA answers ----------------------------------------------------------------------------
    wait_for(a, f"{xa}/cases/{case}", "#status", "more-information-requested")
    buttons = [e.get_attribute("data-status") for e in a.find_elements(By.CSS_SELECTOR, ".next button")]
    assert buttons == ["information-provided", "withdrawn"], buttons
    ok(f"XA's case page offers only what the requesting side may do now: {buttons}")
    a.find_element(By.CSS_SELECTOR, "button[data-status='information-provided']").click()
    wait_for(a, f"{xa}/cases/{case}", "#status", "information-provided")
    wait_for(b, f"{xb}/cases/{case}", "#status", "information-provided")
    hist_a = [e.text for e in a.find_elements(By.CSS_SELECTOR, "#history .status")]
    hist_b = [e.text for e in b.find_elements(By.CSS_SELECTOR, "#history .status")]
    assert hist_a == hist_b == ["registered", "more-information-requested", "information-provided"], (hist_a, hist_b)
    ok(f"both consoles show the same history: {' → '.join(hist_a)}")
    shot(b, "case-requested-side")

    # --- An extradition: opened at XA; XB reports the next stage its page offers -------------
    a.get(xa + "/new")
    a.find_element(By.ID, "x-person").send_keys("XA-EXT-2026-7")
    Select(a.find_element(By.ID, "x-stage")).select_by_value("provisional-arrest-requested")
    a.find_element(By.CSS_SELECTOR, "#new-extradition button").click()
    WebDriverWait(a, 10).until(lambda d: "/cases/" in d.current_url and d.find_elements(By.ID, "case-id"))
    extradition = text(a, "#case-id")
    wait_for(b, f"{xb}/cases/{extradition}", "#status", "provisional-arrest-requested")
    offered = [e.get_attribute("data-stage") for e in b.find_elements(By.CSS_SELECTOR, "button[data-stage]")]
    assert offered == ["arrested", "formal-request-received"], offered
    b.find_element(By.CSS_SELECTOR, "button[data-stage='arrested']").click()
    WebDriverWait(b, 10).until(lambda d: text(d, "#status") == "arrested")
    assert "formal request must arrive" in text(b, "#h-deadlines + table"), text(b, "#h-deadlines + table")
    wait_for(a, f"{xa}/cases/{extradition}", "#history", "arrested")
    ok(f"XB reported the arrest from the stages its side may report ({offered}); the ECE deadlines run on both sides")

    # --- Partners: cards with root fingerprints ----------------------------------------------
    a.get(xa + "/partners")
    row = text(a, "#directory tbody tr")
    assert "XB.DOJ-CA" in row and "pinned by fingerprint" in row, row
    assert re.fullmatch(r"[0-9a-f:]{20,}|[A-Z0-9 -]{20,}|\S{16,}", text(a, "#directory code.fingerprint")), text(a, "#directory code.fingerprint")
    ok("the partners page shows each partner's card: name, root fingerprint, key history, who introduced and witnessed it")

    def fetch(d, base, href, form=None):
        """Fetches a link of the page (or posts one of its forms) with the browser's session
        cookie: a download."""
        session = [c for c in d.get_cookies() if c["name"] == "rogatory_console"][0]["value"]
        headers = {"Cookie": f"rogatory_console={session}"}
        data = None
        if form is not None:
            data = urllib.parse.urlencode({
                i.get_attribute("name"): i.get_attribute("value")
                for i in form.find_elements(By.CSS_SELECTOR, "input[type=hidden]")
            }).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(base + href, data=data, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{href}: {e.code} {e.read().decode()[:500]}")

    # --- Evidence: XB adds a file and sends its manifest; XA fetches, verifies, downloads ------
    content = os.urandom(3 * 1024 * 1024 + 17)
    path = os.path.join(work, "bank-records.csv")
    with open(path, "wb") as f:
        f.write(content)
    b.get(f"{xb}/cases/{case}")
    b.find_element(By.ID, "evidence-file").send_keys(path)
    b.find_element(By.ID, "evidence-description").send_keys("Payment records of the account")
    b.find_element(By.CSS_SELECTOR, "#evidence-add button[type=submit]").click()
    WebDriverWait(b, 30).until(lambda d: "staged" in text(d, "#evidence"))
    row = text(b, "#evidence")
    assert hashlib.sha256(content).hexdigest()[:8] in b.page_source, row
    ok("XB added a 3 MiB file through its case page: uploaded with progress, hashed and sealed as it arrived")
    b.find_element(By.ID, "send-manifest").click()
    WebDriverWait(b, 10).until(lambda d: "Manifest of 1 item(s) sent" in text(d, ".notice"))
    wait_for(a, f"{xa}/cases/{case}", "#evidence", "verified", within=60)
    download = a.find_element(By.CSS_SELECTOR, "#evidence form.download")
    got = fetch(a, xa, download.get_attribute("action").split(xa, 1)[1], download)
    assert hashlib.sha256(got).digest() == hashlib.sha256(content).digest(), len(got)
    ok("XA's console shows the item fetched and verified; downloaded through its page, it is the file XB added, byte for byte")
    shot(a, "case-evidence")

    # --- Audit: each side exports its bundle for the auditor; the auditor verifies both -------
    # At XA the auditor's own account reads the log (an issuing authority may not: `audit`).
    a.get(f"{xa}/cases/{case}/audit")
    assert "may not" in a.page_source, a.page_source[:300]
    sign_in(a, xa, auditor)
    bundles = []
    for d, base in [(a, xa), (b, xb)]:
        d.get(f"{base}/cases/{case}/audit")
        assert len(d.find_elements(By.CSS_SELECTOR, "#log tbody tr")) > 3
        assert "rogatory." in text(d, "#checkpoint")
        d.find_element(By.CSS_SELECTOR, "#log tbody tr a").click()
        WebDriverWait(d, 10).until(lambda d: "tlog-proof" in text(d, "#proof"))
        d.get(f"{base}/cases/{case}/audit")
        d.find_element(By.ID, "auditor-card").send_keys(auditor_card)
        d.find_element(By.CSS_SELECTOR, "#bundle-export button").click()
        WebDriverWait(d, 30).until(lambda d: d.find_elements(By.ID, "bundle-download"))
        link = d.find_element(By.ID, "bundle-download")
        assert "disclosed" in link.text, link.text
        bundle = os.path.join(work, f"{len(bundles)}.bundle")
        with open(bundle, "wb") as f:
            f.write(fetch(d, base, link.get_attribute("href").split(base, 1)[1]))
        bundles.append(bundle)
    ok("each side's audit page shows its log with proofs and its checkpoint (to an official who may audit), and exports its bundle for the auditor")
    a.get(xa + "/verify")
    a.find_element(By.ID, "bundles").send_keys("\n".join(bundles))
    a.find_element(By.CSS_SELECTOR, "#verify-form button").click()
    WebDriverWait(a, 60).until(lambda d: d.find_elements(By.ID, "verdict"))
    verdict = a.find_element(By.ID, "verdict")
    assert "ok" in verdict.get_attribute("class") and verdict.text.startswith("VERIFIED"), verdict.text
    ok(f"the auditor verified both sides' bundles in the console: {verdict.text[:60]!r}")
    shot(a, "verify-report")
    a.get(xa + "/")
    shot(a, "today")

    # --- Languages, keyboard -------------------------------------------------------------------
    a.get(f"{xa}/cases/{case}")
    Select(a.find_element(By.ID, "lang")).select_by_value("fr")
    a.find_element(By.CSS_SELECTOR, "form[action='/language'] button").click()
    WebDriverWait(a, 10).until(lambda d: "Dossiers" in text(d, "nav"))
    assert re.search(r"\d+ (janv\.|févr\.|mars|avr\.|mai|juin|juil\.|août|sept\.|oct\.|nov\.|déc\.) \d{4}, \d\d:\d\d UTC", a.page_source)
    ok("in French: the navigation and the dates (in words, UTC shown)")
    Select(a.find_element(By.ID, "lang")).select_by_value("es")
    a.find_element(By.CSS_SELECTOR, "form[action='/language'] button").click()
    WebDriverWait(a, 10).until(lambda d: "Expedientes" in text(d, "nav"))
    ok("in Spanish")
    a.get(xa + "/")
    body = a.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert a.switch_to.active_element.get_attribute("class") == "skip"
    a.switch_to.active_element.send_keys(Keys.ENTER)
    assert a.switch_to.active_element.get_attribute("id") == "main"
    ok("keyboard: the first Tab reaches the skip link, Enter moves to the content")

    # --- Nothing from outside --------------------------------------------------------------
    pages = ["/", "/cases", f"/cases/{case}", f"/cases/{case}/audit", "/new", "/inbox", "/outbox",
             "/drafts", "/partners", "/stats", "/verify"]
    for path in pages:
        a.get(xa + path)
        out = outside_resources(a, xa)
        assert out == [], (path, out)
        assert labelled(a) == [], (path, labelled(a))
    ok(f"no page loads anything from outside the node, and every control has a label ({len(pages)} pages)")

    # --- Security ------------------------------------------------------------------------------
    session = [c for c in a.get_cookies() if c["name"] == "rogatory_console"][0]["value"]
    host = xa.split("//")[1]

    def post(path, data, headers, method="POST", base=xa):
        body = data if isinstance(data, bytes) else data.encode()
        req = urllib.request.Request(base + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    code, body = post(f"/cases/{case}/update", "status=withdrawn",
                      {"Cookie": f"rogatory_console={session}", "Content-Type": "application/x-www-form-urlencoded"})
    assert code == 403 and "CSRF" in body, (code, body[:200])
    a.get(f"{xa}/cases/{case}")
    assert text(a, "#status") == "information-provided"
    ok("a form without the CSRF token is refused (403), and changes nothing")
    req = urllib.request.Request(xa + "/login", headers={"Host": "rebind.example:" + host.split(":")[1]})
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("a foreign Host was served")
    except urllib.error.HTTPError as e:
        assert e.code == 421, e.code
    ok("a request with a foreign Host header (DNS rebinding) is refused (421)")
    code, _ = post("/language", "lang=fr", {"Cookie": f"rogatory_console={session}", "Origin": "http://attacker.example"})
    assert code == 403, code
    ok("a form posted with a foreign Origin is refused (403)")

    # Uploads: the CSRF token in a header, the caller's permission, the length announced.
    a.get(f"{xa}/cases/{case}")
    token = a.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    upload = f"/cases/{case}/evidence?name=x.bin&size=3"
    code, body = post(upload, b"abc", {"Cookie": f"rogatory_console={session}"}, "PUT")
    assert code == 403 and "CSRF" in body, (code, body[:200])
    code, body = post(upload, b"abc", {"Cookie": f"rogatory_console={session}", "x-csrf-token": token}, "PUT")
    assert code == 403 and "may not add evidence" in body, (code, body[:200])
    b_session = [c for c in b.get_cookies() if c["name"] == "rogatory_console"][0]["value"]
    b.get(f"{xb}/cases/{case}")
    b_token = b.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    code, body = post(f"/cases/{case}/evidence?name=x.bin&size=10", b"abc",
                      {"Cookie": f"rogatory_console={b_session}", "x-csrf-token": b_token}, "PUT", xb)
    assert code == 422 and "not 10" in body, (code, body[:200])
    b.get(f"{xb}/cases/{case}")
    rows = b.find_elements(By.CSS_SELECTOR, "#evidence tbody tr")
    assert len(rows) == 1, [r.text for r in rows]
    ok("an upload without the CSRF header, by an official who may not add evidence, or shorter than announced is refused; nothing is added")
    a.get(xa + "/stats")
    assert "may not read content" in a.page_source, a.page_source[:300]
    ok("statistics are refused to an official who may not read content (an auditor)")

    a.get(f"{xa}/cases/{case}?done=Your+case+was+closed.+Call+%2B000+111")
    assert a.find_elements(By.CSS_SELECTOR, ".notice") == [] and "Call +000" not in a.page_source
    ok("a link cannot make a page say something: notices are kept in the session, never read from the address")
    req = urllib.request.Request(xa + "/", headers={"Cookie": f"rogatory_console={session}; rogatory_console={'0' * 64}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.url.endswith("/login"), r.url
    ok("a request carrying two session cookies (one planted by another server of this host) names no session")

    # A page of another origin (another port) that frames the console and posts a form to it.
    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            page = (f'<html><body><iframe id="f" src="{xa}/"></iframe>'
                    f'<form id="x" method="post" action="{xa}/logout"><input name="csrf" value="guess"></form>'
                    '</body></html>')
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page.encode())

        def log_message(self, *args):
            pass

    evil = http.server.HTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    a.get(f"http://127.0.0.1:{evil.server_port}/")
    a.switch_to.frame(a.find_element(By.ID, "f"))
    framed = a.find_elements(By.CSS_SELECTOR, "nav, form[action='/login']")
    a.switch_to.default_content()
    assert framed == [], "the console was shown inside another site's frame"
    ok("a page of another origin cannot frame the console (frame-ancestors 'none')")
    a.execute_script("document.getElementById('x').submit()")
    WebDriverWait(a, 10).until(lambda d: "another site" in d.page_source or "CSRF" in d.page_source)
    assert "another site" in a.page_source, a.page_source[:300]
    a.get(xa + "/")
    assert not a.current_url.endswith("/login"), "the session was ended by another site's form"
    ok("a form posted from a page of another origin is refused, and the session stays")
    evil.shutdown()
    print(f"# {checks} console checks passed")
finally:
    a.quit()
    b.quit()
    import shutil
    shutil.rmtree(work, ignore_errors=True)
