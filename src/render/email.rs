//! An email built from a rendered message: multipart/alternative with the plain text first and
//! the HTML second (clients show the last part they understand), a subject, and a stable
//! Message-ID so a resent delivery is recognisably the same message.

use super::Rendered;
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;

/// Why an email could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("the rendered email has no {0}; email templates need subject, txt and html parts")]
    MissingPart(&'static str),
    #[error("cannot build the email: {0}")]
    Build(#[from] lettre::error::Error),
}

/// Builds the message. `message_id` is the local part of the Message-ID (e.g. the delivery's
/// idempotency key); `domain` its right-hand side.
pub fn build_email(
    from: Mailbox,
    to: Mailbox,
    rendered: &Rendered,
    message_id: &str,
    domain: &str,
) -> Result<Message, EmailError> {
    let subject = rendered
        .subject
        .clone()
        .ok_or(EmailError::MissingPart("subject"))?;
    let html = rendered
        .html
        .clone()
        .ok_or(EmailError::MissingPart("html"))?;
    Ok(Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{message_id}@{domain}>")))
        .multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            html,
        ))?)
}
