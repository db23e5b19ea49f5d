//! Police-to-police liaison messages.

use serde::{Deserialize, Serialize};

use super::{AttachmentRef, Handling, Problems, UrgencyLevel};
use crate::ids::MessageId;

/// A liaison message between police services, with handling codes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiaisonMessage {
    /// Subject line.
    pub subject: String,
    /// Text.
    pub body: String,
    /// Handling codes and restrictions.
    pub handling: Handling,
    /// Priority.
    pub priority: UrgencyLevel,
    /// Reason for an urgent or emergency priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_reason: Option<String>,
    /// The message this answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<MessageId>,
    /// Attachments, by hash.
    pub attachments: Vec<AttachmentRef>,
    /// Language (BCP 47).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl LiaisonMessage {
    pub(crate) fn check(&self, p: &mut Problems) {
        p.text("subject", &self.subject, "the subject line is empty");
        p.text("body", &self.body, "the message text is empty");
        p.handling("handling", &self.handling);
        if self.priority != UrgencyLevel::Routine
            && self
                .priority_reason
                .as_deref()
                .unwrap_or("")
                .trim()
                .is_empty()
        {
            p.push(
                "priority_reason",
                "an urgent or emergency message must say why",
            );
        }
        p.attachments("attachments", &self.attachments);
    }
}
