//! The local API's client: what the command line's online commands use to talk to the running
//! node of a data directory (see [`crate::api`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// A connection to a running node's local API.
pub struct Client {
    base: String,
    token: String,
    dir: PathBuf,
    user: String,
    agent: ureq::Agent,
}

/// The local user's name, recorded in the audit entries of what they send and read:
/// `ROGATORY_USER`, else the login name.
pub fn local_user() -> String {
    ["ROGATORY_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

impl Client {
    /// The API of the node running from `dir`; an error if it is not running.
    pub fn connect(dir: &Path) -> Result<Self> {
        let (addr, token) = crate::api::locate(dir)?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Long enough for the API's longest wait (`?wait=` is at most 300 s).
            .timeout_global(Some(Duration::from_secs(330)))
            .build()
            .into();
        Ok(Self {
            base: format!("http://{addr}"),
            token,
            dir: dir.to_path_buf(),
            user: local_user(),
            agent,
        })
    }

    /// Names the local user differently from the environment's.
    pub fn as_user(mut self, user: &str) -> Self {
        self.user = user.to_string();
        self
    }

    fn finish(&self, r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value> {
        let mut resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => bail!(
                "the node in {} is not running (nothing answers at {}; start it with `rogatory run`)",
                self.dir.display(),
                self.base
            ),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot reach the node at {}", self.base));
            }
        };
        let status = resp.status();
        let v: Value = resp
            .body_mut()
            .read_json()
            .with_context(|| format!("the node answered {status} with an unreadable body"))?;
        if !status.is_success() {
            bail!(
                "{}",
                v["error"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("the node answered {status}"))
            );
        }
        Ok(v)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Result<Value> {
        let r = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .header(crate::api::USER_HEADER, &self.user)
            .call();
        self.finish(r)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .header(crate::api::USER_HEADER, &self.user)
            .send_json(body);
        self.finish(r)
    }
}
