//! Why the store worker did not do what it was asked, and whose fault that is.

/// An answer of the store worker other than success. Each variant says whose fault it is, so
/// that the local API answers with the right status (`api::ApiError`) and the command line
/// exits with the right code, once, in one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The request is not acceptable as given (the caller's fault): an addressee that is not a
    /// pinned partner, a message this agency may not send in the case, a message that does not
    /// seal within the limits. Nothing changed.
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist (a case, an item). Nothing changed.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the state of what it names: an illegal transition of the
    /// case, a case that exists already, nothing staged to send. Nothing changed.
    #[error("{0}")]
    Conflict(String),
    /// The store failed: the whole batch the request was in was abandoned, nothing of it is
    /// durable. The operator's concern; the request may be repeated.
    #[error("the store failed, nothing was recorded: {0}")]
    Store(String),
    /// The node is stopping: the worker no longer takes jobs.
    #[error("the node is stopping")]
    Stopping,
}

impl Error {
    /// A store failure, with its causes.
    pub fn store(e: &anyhow::Error) -> Self {
        Self::Store(format!("{e:#}"))
    }
}

impl From<crate::cases::Refusal> for Error {
    /// A case's refusal of a local user's message: an illegal transition is a conflict with the
    /// case's state, the rest (not this agency's to send, over a quota) the request's fault.
    fn from(r: crate::cases::Refusal) -> Self {
        match r {
            crate::cases::Refusal::Illegal(_) => Self::Conflict(format!("refused: {r}")),
            _ => Self::Invalid(format!("refused: {r}")),
        }
    }
}
