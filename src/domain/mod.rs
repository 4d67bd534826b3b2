//! Pure types and rules: what an incident, an update, a component and a subscriber are, and which
//! changes to them make sense. Nothing here touches storage or the network, so every rule can be
//! tested as a plain function and reused by the API, the CLI and (later) the monitoring intake.

pub mod alert;
pub mod approval;
mod audience;
pub mod audit;
mod component;
mod delivery;
mod hold;
mod incident;
mod incident_filter;
mod locale;
mod names;
mod next_update;
mod notice;
mod phone;
pub mod session;
pub mod signup;
mod span;
pub mod standalone;
mod subscriber;
mod template;
mod text;
mod thread;
mod timeline;
mod update;
mod url;
pub mod user;

pub use approval::{Approval, ApprovalAction, ApprovalState, Decision};
pub use audience::{follows, ExpandTarget, Expanded};
pub use component::{Component, ComponentName, ComponentStatus, StatusChange};
pub use delivery::{
    idempotency_key, Broadcast, Claim, Delivery, DeliveryCursor, DeliveryState, Lease, Target,
};
pub use hold::Hold;
pub use incident::{
    check_status_for_new, parse_titles, Impact, Incident, IncidentKind, PublicState, Reminder,
    Status, Title, Titles,
};
pub use incident_filter::IncidentFilter;
pub use locale::Locale;
pub use next_update::{
    apply_promise, local_then_utc, next_local_time, parse_next_update, NextUpdate, PromiseChange,
    PromiseEdit,
};
pub use notice::{parse_day, parse_tz, Notice};
pub use phone::PhoneNumber;
pub use session::{Session, TotpRecord};
pub use signup::{CodeCheck, Secret, SignUp};
pub use span::{Span, SpanError};
pub use standalone::{Standalone, StandaloneKind};
pub use subscriber::{Contact, ImportCounts, NewSubscriber, Pending, Subscriber};
pub use template::{
    parse_messages, IncidentTemplate, TemplateContent, TemplateFields, TemplateName,
    MAX_TEMPLATE_NAME,
};
pub use text::{check_line, check_text, normalize_breaks, replace_controls};
pub use thread::{PostRef, Thread};
pub use timeline::{apply_update, open_incident, Appended, Change, NewIncident, NewUpdate};
pub use update::{Body, Update, UpdateAction};
pub use url::{HttpUrl, UrlError};
pub use user::{ApiToken, Role, User, UserName, BOOTSTRAP_ADMIN};

/// A rule of the domain was broken. Every message says what to do instead, because it is shown
/// verbatim to the person at the console, the CLI or the API client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field failed validation; `field` names it as the API spells it.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The requested status change is not allowed from the current status.
    #[error("{0}")]
    Transition(String),
    /// An incident names a component that is not configured.
    #[error("unknown component \"{0}\": create it first with `crier component set {0} operational`, or check the spelling (`crier component list`)")]
    UnknownComponent(String),
}

impl DomainError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
