//! Who may call which route (spec/PEOPLE.md §3): the bearer token names the caller (an
//! official's account, or the node's own token), the route needs a permission, and the
//! caller's roles must give it. Refusals answer 401 (no valid token) or 403 (not allowed), and
//! are logged.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, MatchedPath, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use rogatory_proto::ids::Sha256Digest;

use super::wire::Me;
use super::{ApiError, ApiState, USER_HEADER};
use crate::people::{Caller, Lookup, Permission};

/// The permission each route needs, by method and route pattern. A route missing here needs
/// [`Permission::Administer`] (a test checks that every route of the API is listed).
pub const PERMISSIONS: &[(&str, &str, Permission)] = {
    use Permission::*;
    &[
        ("GET", "/v1/status", Read),
        ("GET", "/v1/me", Read),
        ("GET", "/v1/inbox", Read),
        ("GET", "/v1/outbox", Read),
        ("GET", "/v1/outbox/{id}", Read),
        ("POST", "/v1/send", Send),
        ("POST", "/v1/send/batch", Send),
        ("GET", "/v1/messages/{id}", Content),
        ("POST", "/v1/messages/{id}/forward", Send),
        ("GET", "/v1/cases", Read),
        ("POST", "/v1/cases", Send),
        ("GET", "/v1/cases/{id}", Read),
        ("POST", "/v1/cases/{id}/export", Export),
        ("GET", "/v1/deadlines", Read),
        ("GET", "/v1/stats", Content),
        ("GET", "/v1/evidence/{case}", Read),
        ("POST", "/v1/evidence/{case}", Send),
        ("POST", "/v1/evidence/{case}/send", Send),
        ("POST", "/v1/evidence/{case}/export", Content),
        ("POST", "/v1/evidence/{case}/verify", Read),
        ("GET", "/v1/alerts", Read),
        ("GET", "/v1/audit/{case}/log", Audit),
        ("GET", "/v1/audit/{case}/checkpoint", Audit),
        ("GET", "/v1/audit/{case}/prove", Audit),
        ("GET", "/v1/audit/{case}/consistency", Audit),
        ("POST", "/v1/audit/verify-store", Audit),
        ("POST", "/v1/keys/reload", Administer),
        ("POST", "/v1/backup", Administer),
        ("GET", "/metrics", Read),
        ("GET", "/v1/drafts", Read),
        ("GET", "/v1/drafts/{id}", Content),
        ("POST", "/v1/drafts/{id}/approve", Approve),
        ("POST", "/v1/drafts/{id}/reject", Approve),
        ("POST", "/v1/drafts/{id}/validate", Validate),
    ]
};

/// The permission a route needs.
pub fn permission_for(method: &Method, route: &str) -> Permission {
    PERMISSIONS
        .iter()
        .find(|(m, r, _)| *m == method.as_str() && *r == route)
        .map_or(Permission::Administer, |(_, _, p)| *p)
}

/// A request whose caller may call its route; holds the name recorded for it.
pub struct Authorized(pub Option<String>);

impl FromRequestParts<Arc<ApiState>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_string(), |m| m.as_str().to_string());
        let need = permission_for(&parts.method, &route);
        let caller = caller(parts, state).ok_or_else(|| {
            tracing::warn!(path = %parts.uri.path(), "API request refused: no valid bearer token");
            ApiError(
                StatusCode::UNAUTHORIZED,
                format!(
                    "a valid bearer token is required (your own, from `rogatory user add`, or the node's {} file)",
                    super::TOKEN_FILE
                ),
            )
        })?;
        if !caller.may(need) {
            let who = describe(&caller);
            tracing::warn!(path = %parts.uri.path(), caller = %who, ?need, "API request refused: not allowed");
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                match &caller {
                    Caller::Account(a) if a.disabled_at.is_some() => {
                        format!("the account {} is disabled", a.name)
                    }
                    Caller::NodeAdministrator => format!(
                        "the node's own token administers the node only, now that accounts exist: use your own token (ROGATORY_TOKEN_FILE) for {route}"
                    ),
                    _ => format!("{who} may not {} ({route})", describe_permission(need)),
                },
            ));
        }
        let name = caller.name();
        if let (Caller::Account(_), Some(t)) = (&caller, bearer(parts)) {
            parts
                .extensions
                .insert(Bearer(zeroize::Zeroizing::new(t.to_string())));
        }
        parts.extensions.insert(caller);
        Ok(Authorized(name))
    }
}

/// Officials' keys opened at once (each an Argon2id derivation of 64 MiB).
static OFFICER_KEYS_AT_ONCE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// An official's own token, as their request carried it: it opens their key for this request
/// only (spec/PEOPLE.md §4).
#[derive(Clone)]
pub struct Bearer(pub zeroize::Zeroizing<String>);

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The official who signs a message of type `kind` in their own name (spec/PEOPLE.md §5): the
/// caller, if `kind` is one of `[approval] signed` and the agency's key history certifies the
/// caller's key now; their key is opened with the token of this request.
pub(super) async fn officer_signer(
    s: &Arc<ApiState>,
    caller: &Caller,
    token: Option<&Bearer>,
    kind: rogatory_proto::message::MessageType,
) -> Result<Option<crate::engine::OfficerSigner>, ApiError> {
    if !s.signed.contains(&kind) {
        return Ok(None);
    }
    own_officer(s, caller, token).await
}

/// The caller's own key as an official, if the agency's key history certifies it now, opened
/// with the token of this request.
pub(super) async fn own_officer(
    s: &Arc<ApiState>,
    caller: &Caller,
    token: Option<&Bearer>,
) -> Result<Option<crate::engine::OfficerSigner>, ApiError> {
    let (Caller::Account(a), Some(token)) = (caller, token) else {
        return Ok(None);
    };
    let Some(key) = a.officer_public_key() else {
        return Ok(None);
    };
    let now = rogatory_proto::time::now_unix();
    let role = match s.me.history.officer(key.id(), now) {
        Ok(o) => o.role,
        Err(_) => {
            tracing::info!(user = %a.name, "not signed in the official's name: their key is not certified (rogatory user certify)");
            return Ok(None);
        }
    };
    // Each opening costs an Argon2id derivation (64 MiB for a moment): a few at once, however
    // many requests officials send together.
    let _opening = OFFICER_KEYS_AT_ONCE
        .acquire()
        .await
        .map_err(|_| ApiError::internal("the node is stopping"))?;
    let (dir, name, token) = (s.data.clone(), a.name.clone(), token.0.clone());
    let key = super::blocking(move || {
        crate::people::officer_key(&dir, &name, &token)
            .map_err(|e| ApiError::internal(format!("{e:#}")))
    })
    .await?;
    Ok(Some(crate::engine::OfficerSigner {
        role,
        key: Arc::new(key),
    }))
}

/// Who the bearer token names, if anyone.
fn caller(parts: &Parts, state: &ApiState) -> Option<Caller> {
    let token = bearer(parts)?;
    let node_token = Sha256Digest::of(token.as_bytes()) == state.token_hash;
    match state.accounts.find(token) {
        Lookup::NoAccounts if node_token => {
            let user = parts
                .headers
                .get(USER_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(|u| u.chars().take(64).collect());
            Some(Caller::NodeToken(user))
        }
        Lookup::Found(a) => Some(Caller::Account(a)),
        _ if node_token => Some(Caller::NodeAdministrator),
        _ => None,
    }
}

fn describe(c: &Caller) -> String {
    match c {
        Caller::NodeToken(_) => "the node's own token".into(),
        Caller::NodeAdministrator => crate::people::NODE_ADMINISTRATOR.into(),
        Caller::Account(a) => format!(
            "{} ({})",
            a.name,
            a.roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn describe_permission(p: Permission) -> &'static str {
    match p {
        Permission::Read => "read the node's lists",
        Permission::Content => "read content",
        Permission::Send => "open cases or send",
        Permission::Export => "export a case's bundle",
        Permission::Audit => "read the audit log",
        Permission::Administer => "administer the node",
        Permission::Approve => "approve or reject drafts (an issuing authority's)",
        Permission::Validate => "validate drafts (a validating authority's)",
    }
}

/// Who the caller is and what it may do.
#[utoipa::path(get, path = "/v1/me", tag = "status",
    responses((status = 200, description = "The answer", body = Me), (status = 401, description = "No valid bearer token", body = super::wire::ErrorBody)))]
pub async fn me(
    Authorized(name): Authorized,
    axum::Extension(caller): axum::Extension<Caller>,
    State(_): State<Arc<ApiState>>,
) -> Json<Me> {
    use Permission::*;
    let (roles, account) = match &caller {
        Caller::Account(a) => (a.roles.clone(), true),
        Caller::NodeAdministrator => (vec![crate::people::Role::Administrator], false),
        Caller::NodeToken(_) => (crate::people::Role::ALL.to_vec(), false),
    };
    Json(Me {
        name,
        account,
        roles,
        permissions: [
            Read, Content, Send, Export, Audit, Administer, Approve, Validate,
        ]
        .into_iter()
        .filter(|p| caller.may(*p))
        .collect(),
    })
}
