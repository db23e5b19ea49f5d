//! The console: the web interface clerks, officers and auditors use (docs/console.md), served
//! by `rogatory run` on the local API's loopback address, beside the API.
//!
//! Every page is rendered on the server from the typed API itself: the console holds, for each
//! signed-in browser, the official's token in memory, and calls the API's router in-process with
//! it (`Console::call`), so the console can do exactly what the official may do through the API
//! and nothing else — the same permissions, the same four-eyes rules, the same officials'
//! signatures, the same audit entries under the official's name.
//!
//! What protects it, on every request (`guard`):
//! - the `Host` header must name the loopback address the node listens on (a DNS rebinding
//!   attack reaches it under another name, and is refused);
//! - a strict Content-Security-Policy: only the node's own style sheet and script, no inline
//!   script, no frames, forms posted to the node only; nothing is ever loaded from elsewhere;
//! - a state-changing request (`POST`) must come from the console's own pages: a cross-site
//!   `Sec-Fetch-Site` or a foreign `Origin` is refused, and every form carries the session's CSRF
//!   token, checked in constant time;
//! - the session is an `HttpOnly`, `SameSite=Strict` cookie naming a random id; the token never
//!   reaches the browser again after sign-in. Sessions end after 8 hours idle, or on sign-out.

mod audit;
mod evidence;
mod extradition;
mod files;
mod i18n;
mod pages;
mod render;
mod request;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use tower::ServiceExt;
use zeroize::Zeroizing;

pub use i18n::Lang;

/// The session cookie's name.
const COOKIE: &str = "rogatory_console";
/// A session unused this long ends.
const IDLE: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at once; the one idle longest makes room.
const MAX_SESSIONS: usize = 64;
/// A form's body must arrive within this.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer of the API the console reads.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// The Content-Security-Policy of every console response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A signed-in browser.
struct Session {
    /// The official's token (or the node's), used for every call to the API.
    token: Zeroizing<String>,
    /// The name the API records (sent with the node's own token).
    user: String,
    /// What the caller may do, as the API says (`GET /v1/me`).
    me: crate::api::wire::Me,
    /// The token every form of this session carries.
    csrf: String,
    /// The language of its pages.
    lang: Lang,
    /// Last used.
    seen: Instant,
    /// What the next page says about the form just posted (a catalog key and its argument).
    notice: Option<(&'static str, Option<String>)>,
}

/// The console's state: the API it calls, the sessions, the addresses it answers to.
pub struct Console {
    api: axum::Router,
    sessions: Mutex<HashMap<String, Session>>,
    hosts: Vec<String>,
    agency: String,
    /// The node's data directory (the console's working files are in `console/` there).
    data: std::path::PathBuf,
    /// Files made for one session to fetch once (exports), or kept for it (uploads to verify).
    downloads: Mutex<HashMap<String, files::Download>>,
}

/// What a page handler knows of its session.
#[derive(Clone)]
pub struct Who {
    id: String,
    /// The name the API records.
    pub user: String,
    /// What the caller may do.
    pub me: crate::api::wire::Me,
    /// The session's CSRF token, for forms.
    pub csrf: String,
    /// The pages' language.
    pub lang: Lang,
}

impl Who {
    /// Whether the caller holds `p`.
    pub fn may(&self, p: crate::people::Permission) -> bool {
        self.me.permissions.contains(&p)
    }
}

/// Why a console request failed: shown on the page, in words.
#[derive(Debug)]
pub struct Failure(pub StatusCode, pub String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Rogatory</title><link rel=\"stylesheet\" href=\"/static/console.css\"></head><body><main><h1>{}</h1><p role=\"alert\">{}</p><p><a href=\"/\">Rogatory</a></p></main></body></html>",
            self.0.as_u16(),
            render::esc(&self.1)
        );
        (
            self.0,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rogatory_proto::keys::fill_random(&mut b);
    hex::encode(b)
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Console {
    /// Calls the API in-process as the session's caller: `path` with `body` (JSON), the answer
    /// as `T`; a refusal comes back with the API's own words.
    pub async fn call<T: DeserializeOwned>(
        &self,
        who: &Who,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, Failure> {
        let token = {
            let sessions = self.sessions.lock().map_err(|_| {
                Failure(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "sessions poisoned".into(),
                )
            })?;
            let s = sessions.get(&who.id).ok_or_else(|| {
                Failure(StatusCode::UNAUTHORIZED, "your session has ended".into())
            })?;
            s.token.clone()
        };
        self.call_with(&token, &who.user, method, path, body).await
    }

    /// `GET path` through the API as the signed-in official (see [`Console::call`]).
    pub async fn get<T: DeserializeOwned>(&self, who: &Who, path: &str) -> Result<T, Failure> {
        self.call(who, Method::GET, path, None).await
    }

    async fn call_with<T: DeserializeOwned>(
        &self,
        token: &str,
        user: &str,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, Failure> {
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(crate::api::USER_HEADER, user);
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(&v).unwrap_or_default())
            }
            None => Body::empty(),
        };
        let req = req
            .body(body)
            .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let answer = self
            .api
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let status = answer.status();
        let bytes = http_body_util::Limited::new(answer.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            let why = serde_json::from_slice::<crate::api::wire::ErrorBody>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(Failure(status, why));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            Failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the API's answer: {e}"),
            )
        })
    }

    /// The session a request's cookie names, refreshed; `None` if there is none or it ended.
    fn session(&self, headers: &HeaderMap) -> Option<Who> {
        let id = cookie(headers)?;
        let mut sessions = self.sessions.lock().ok()?;
        let now = Instant::now();
        sessions.retain(|_, s| now.duration_since(s.seen) < IDLE);
        let s = sessions.get_mut(&id)?;
        s.seen = now;
        Some(Who {
            id,
            user: s.user.clone(),
            me: s.me.clone(),
            csrf: s.csrf.clone(),
            lang: s.lang,
        })
    }

    /// Signs in with a token: the API must know it. Returns the new session's cookie value.
    async fn sign_in(&self, token: &str, name: &str, lang: Lang) -> Result<String, Failure> {
        let user = if name.trim().is_empty() {
            "console".to_string()
        } else {
            name.trim().chars().take(64).collect()
        };
        let me: crate::api::wire::Me = self
            .call_with(token, &user, Method::GET, "/v1/me", None)
            .await?;
        let user = me.name.clone().unwrap_or(user);
        let id = random_hex();
        let mut sessions = self.sessions.lock().map_err(|_| {
            Failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "sessions poisoned".into(),
            )
        })?;
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        tracing::info!(%user, "console: signed in");
        sessions.insert(
            id.clone(),
            Session {
                token: Zeroizing::new(token.to_string()),
                user,
                me,
                csrf: random_hex(),
                lang,
                seen: Instant::now(),
                notice: None,
            },
        );
        Ok(id)
    }

    fn sign_out(&self, who: &Who) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(&who.id);
        }
        tracing::info!(user = %who.user, "console: signed out");
    }

    /// Sends an update of case `id` (`kind`, `body`) to its partner, then shows the case again
    /// with a notice naming `what` was sent.
    pub(super) async fn tell_partner(
        &self,
        who: &Who,
        id: &str,
        kind: &str,
        body: serde_json::Value,
        what: &str,
    ) -> render::Page {
        let v: crate::api::wire::CaseView = self
            .get(who, &format!("/v1/cases/{}", render::enc(id)))
            .await?;
        let _: crate::api::wire::Sent = self
            .call(
                who,
                Method::POST,
                "/v1/send",
                Some(serde_json::json!({"to": [v.summary.peer], "case": v.summary.case_id, "type": kind, "body": body})),
            )
            .await?;
        self.flash(who, "status-sent", Some(what.to_string()));
        Ok(see_other(&format!(
            "/cases/{}",
            render::enc(&v.summary.case_id)
        )))
    }

    /// Keeps a notice for the session's next page (`key` one of [`render::NOTICES`]).
    pub(super) fn flash(&self, who: &Who, key: &'static str, arg: Option<String>) {
        if let Ok(mut s) = self.sessions.lock()
            && let Some(s) = s.get_mut(&who.id)
        {
            s.notice = Some((key, arg));
        }
    }

    /// The session's notice, once.
    pub(super) fn take_notice(&self, who: &Who) -> Option<(&'static str, Option<String>)> {
        self.sessions
            .lock()
            .ok()
            .and_then(|mut s| s.get_mut(&who.id).and_then(|s| s.notice.take()))
    }

    fn set_lang(&self, who: &Who, lang: Lang) {
        if let Ok(mut s) = self.sessions.lock()
            && let Some(s) = s.get_mut(&who.id)
        {
            s.lang = lang;
        }
    }
}

/// The session id the request's cookie names. Two cookies of that name (one planted by another
/// server of this host with a narrower path, say) name no session.
fn cookie(headers: &HeaderMap) -> Option<String> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string());
    let first = found.next()?;
    if found.next().is_some() {
        tracing::warn!("console: a request with two session cookies refused");
        return None;
    }
    Some(first).filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The form fields of a posted body, in order (a field may repeat).
pub type Fields = Vec<(String, String)>;

/// The first value of `name`.
pub fn field<'a>(f: &'a Fields, name: &str) -> &'a str {
    f.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Every value of `name`.
pub fn fields<'a>(f: &'a Fields, name: &str) -> Vec<&'a str> {
    f.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Parses a posted form and checks its CSRF token against the session's.
pub fn form(who: &Who, body: &[u8]) -> Result<Fields, Failure> {
    let f: Fields = form_urlencoded::parse(body).into_owned().collect();
    if !same(field(&f, "csrf"), &who.csrf) {
        tracing::warn!(user = %who.user, "console: a form without this session's CSRF token refused");
        return Err(Failure(
            StatusCode::FORBIDDEN,
            "this form does not come from your session's pages (its CSRF token is missing or wrong): reload the page".into(),
        ));
    }
    Ok(f)
}

/// Checks every console request (Host, where a `POST` comes from) and sets the security
/// headers of every answer.
async fn guard(State(c): State<Arc<Console>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !c.hosts.contains(&host) {
        tracing::warn!(%host, "console: a request for another host refused (DNS rebinding?)");
        return Failure(
            StatusCode::MISDIRECTED_REQUEST,
            format!("this node answers to {} only", c.hosts[0]),
        )
        .into_response();
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let site = req
            .headers()
            .get("sec-fetch-site")
            .and_then(|h| h.to_str().ok());
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|h| h.to_str().ok());
        let foreign_site = site.is_some_and(|s| s != "same-origin" && s != "none");
        let foreign_origin = origin.is_some_and(|o| o != format!("http://{host}"));
        if foreign_site || foreign_origin {
            tracing::warn!(
                ?origin,
                ?site,
                "console: a form posted from another site refused"
            );
            return Failure(
                StatusCode::FORBIDDEN,
                "a form posted from another site is refused".into(),
            )
            .into_response();
        }
    }
    // A form's body arrives whole within 30 s (an upload's, frame by frame: `files`).
    let req = if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        match tokio::time::timeout(FORM_TIMEOUT, axum::body::to_bytes(body, 1 << 20)).await {
            Ok(Ok(b)) => Request::from_parts(parts, Body::from(b)),
            Ok(Err(_)) => {
                return Failure(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the form is too large".into(),
                )
                .into_response();
            }
            Err(_) => {
                tracing::warn!("console: a form's body did not arrive in time");
                return Failure(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("the form did not arrive within {FORM_TIMEOUT:?}"),
                )
                .into_response();
            }
        }
    } else {
        req
    };
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    // A page that set its own (the verifier's report) keeps it.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: with the latter a browser sends `Origin: null` with
    // the console's own forms, which the check above would refuse.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// A page that needs a session: the session, or a redirect to sign in.
pub struct Signed(pub Who);

impl axum::extract::FromRequestParts<Arc<Console>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        c: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        match c.session(&parts.headers) {
            Some(w) => Ok(Signed(w)),
            None => Err(see_other("/login")),
        }
    }
}

/// A redirect after a form (303: the browser gets the page).
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("static/console.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("static/console.js"),
    )
        .into_response()
}

async fn login_page(State(c): State<Arc<Console>>, headers: HeaderMap) -> Response {
    let lang = Lang::from_headers(&headers);
    render::page_html(render::login(&c.agency, lang, None))
}

async fn login(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let f: Fields = form_urlencoded::parse(&body).into_owned().collect();
    let lang = Lang::parse(field(&f, "lang")).unwrap_or_else(|| Lang::from_headers(&headers));
    let token = Zeroizing::new(field(&f, "token").trim().to_string());
    match c.sign_in(&token, field(&f, "name"), lang).await {
        Ok(id) => {
            let mut r = see_other("/");
            if let Ok(v) =
                HeaderValue::from_str(&format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/"))
            {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(Failure(_, why)) => {
            tracing::warn!("console: a sign-in refused: {why}");
            let mut r = render::page_html(render::login(&c.agency, lang, Some(&why)));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
    }
}

async fn logout(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    body: axum::body::Bytes,
) -> Response {
    if let Err(f) = form(&who, &body) {
        return f.into_response();
    }
    c.sign_out(&who);
    let mut r = see_other("/login");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("rogatory_console=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    r
}

async fn language(
    State(c): State<Arc<Console>>,
    Signed(who): Signed,
    body: axum::body::Bytes,
) -> Response {
    let f = match form(&who, &body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    if let Some(l) = Lang::parse(field(&f, "lang")) {
        c.set_lang(&who, l);
    }
    let back = field(&f, "back");
    // A path of the console only: `//host` and `/\host` would leave it.
    see_other(
        if back.starts_with('/') && !back.starts_with("//") && !back.starts_with("/\\") {
            back
        } else {
            "/"
        },
    )
}

/// The API's router with the console beside it: the console's pages at `/`, `/cases`, … and
/// `/static/…`, each behind `guard`; the API's routes as they were. `addr` is the loopback
/// address the node listens on: the only `Host` the console answers to.
pub fn with_console(
    api: axum::Router,
    addr: SocketAddr,
    agency: &str,
    data: &std::path::Path,
) -> axum::Router {
    // What an earlier run left in the working directory (downloads not fetched) goes.
    if let Ok(entries) = std::fs::read_dir(data.join("console")) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let port = addr.port();
    let mut hosts = vec![format!("{addr}")];
    for h in ["127.0.0.1", "localhost", "[::1]"] {
        let h = format!("{h}:{port}");
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    let c = Arc::new(Console {
        api: api.clone(),
        sessions: Mutex::new(HashMap::new()),
        hosts,
        agency: agency.to_string(),
        // Absolute: the API takes absolute paths only (exports are written where it is told).
        data: std::path::absolute(data).unwrap_or_else(|_| data.to_path_buf()),
        downloads: Mutex::new(HashMap::new()),
    });
    // Downloads not fetched in time are deleted, every minute.
    let sweeper = Arc::downgrade(&c);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            match sweeper.upgrade() {
                Some(c) => c.sweep(),
                None => return,
            }
        }
    });
    let console = axum::Router::new()
        .route("/", get(pages::today))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/language", post(language))
        .route("/cases", get(pages::cases))
        .route("/cases/{id}", get(pages::case))
        .route("/cases/{id}/update", post(pages::update))
        .route("/cases/{id}/stage", post(extradition::stage))
        .route(
            "/new",
            get(request::new_request).post(request::send_request),
        )
        .route("/new/check", post(request::check_request))
        .route("/new/extradition", post(extradition::open))
        .route("/inbox", get(pages::inbox))
        .route("/outbox", get(pages::outbox))
        .route("/drafts", get(pages::drafts))
        .route("/drafts/{id}/approve", post(pages::approve))
        .route("/drafts/{id}/reject", post(pages::reject))
        .route("/partners", get(pages::partners))
        .route("/stats", get(pages::stats))
        .route("/cases/{id}/evidence", axum::routing::put(evidence::upload))
        .route("/cases/{id}/evidence/send", post(evidence::send))
        .route("/cases/{id}/evidence/content", post(evidence::content))
        .route("/cases/{id}/audit", get(audit::page))
        .route("/cases/{id}/audit/proof", get(audit::proof))
        .route("/cases/{id}/export", axum::routing::put(audit::export))
        .route("/download/{id}", get(audit::download))
        .route("/verify", get(audit::verify_page))
        .route("/verify/upload", axum::routing::put(audit::verify_upload))
        .route("/verify/report", get(audit::verify_report))
        .route("/static/console.css", get(style))
        .route("/static/console.js", get(script))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&c), guard))
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .with_state(c);
    api.merge(console)
}
