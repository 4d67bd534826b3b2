//! The audience aggregates of the port: subscribers and their sign-ups, notices, hold-downs and
//! standalone messages. Who a broadcast reaches is not decided here but by the domain
//! (`domain::ExpandTarget::reaches`, `domain/audience.rs`), and what a sign-up, a confirmation or
//! STOP/START does to a subscriber by `domain::signup`'s rules: a backend only keeps the records
//! and applies those rules under its own lock or transaction.

use crate::domain::{
    CodeCheck, ComponentName, Contact, Hold, ImportCounts, Locale, NewSubscriber, Notice, Secret,
    SignUp, Standalone, Subscriber,
};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::future::Future;
use ulid::Ulid;

/// Subscribers: the people a broadcast may reach, each with one contact address (unique), a
/// language, a component filter and an unsubscribe/manage token (unique).
pub trait Subscribers {
    /// Adds one subscriber; an address already subscribed is a conflict, an unknown component
    /// writes nothing. Durable.
    fn add_subscriber(
        &self,
        new: NewSubscriber,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Subscriber, StoreError>> + Send;

    /// Adds many subscribers, skipping addresses already subscribed or repeated in the batch (a
    /// batch with an unknown component writes nothing). Not atomic as a whole: a backend may
    /// commit it in chunks, each durable before it resolves.
    fn import_subscribers(
        &self,
        batch: Vec<NewSubscriber>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<ImportCounts, StoreError>> + Send;

    /// Subscribers in the order they were added, at most `limit`.
    fn subscribers(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Subscriber>, StoreError>> + Send;

    /// Subscribers for which `keep` answers `true`, in the order they were added, at most
    /// `limit`. `keep` sees each subscriber once, in that order, until `limit` are kept (a
    /// caller may count as it goes and keep none). It may walk every subscriber: a backend runs
    /// it without holding up other tasks (sled: off the async workers).
    fn subscribers_where(
        &self,
        limit: usize,
        keep: impl FnMut(&Subscriber) -> bool + Send,
    ) -> impl Future<Output = Result<Vec<Subscriber>, StoreError>> + Send;

    /// The number of subscribers.
    fn subscriber_count(&self) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// What the dispatcher asks of a subscriber before a send, in one read: `None` when it no
    /// longer exists, else whether it may be sent to ([`Subscriber::receives`]).
    fn subscriber_standing(
        &self,
        id: Ulid,
    ) -> impl Future<Output = Result<Option<bool>, StoreError>> + Send;

    /// The subscriber holding a manage/unsubscribe token.
    fn subscriber_by_token(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Option<Subscriber>, StoreError>> + Send;

    /// Changes a subscriber's language and/or component filter (`Some(vec![])`: every
    /// component), found by id, email or phone number; returns it as it was and as it is now.
    /// Unknown components write nothing. Durable.
    fn change_subscriber(
        &self,
        key: &str,
        locale: Option<Locale>,
        components: Option<Vec<ComponentName>>,
    ) -> impl Future<Output = Result<(Subscriber, Subscriber), StoreError>> + Send;

    /// Removes a subscriber, found by id, email or phone number, with its address and token;
    /// returns it. Durable.
    fn remove_subscriber(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Subscriber, StoreError>> + Send;

    /// Removes the subscriber holding an unsubscribe token (the one-click link). Durable.
    fn unsubscribe(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Subscriber, StoreError>> + Send;
}

/// Self-service sign-ups and consent: the double opt-in (a link by email, a code by SMS),
/// STOP/START, Twilio's opt-out, the purge of sign-ups never confirmed. The rules are
/// `domain::signup`'s; each change is one atomic read-modify-write of the subscriber, durable
/// before it resolves, and a refusal writes nothing.
pub trait SignUps {
    /// Records a sign-up awaiting confirmation with `secret` (only its hash is kept), valid for
    /// `valid`: a new unconfirmed subscriber, or the unconfirmed one of that address renewed
    /// ([`crate::domain::signup::renew`]).
    fn sign_up(
        &self,
        contact: Contact,
        locale: Locale,
        components: Vec<ComponentName>,
        secret: &Secret,
        valid: chrono::Duration,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<SignUp, StoreError>> + Send;

    /// Confirms the sign-up whose email link carries `token` (`<id>.<secret>`), once; `None` for
    /// a used, expired or forged token.
    fn confirm_link(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Subscriber>, StoreError>> + Send;

    /// Checks an SMS code for `phone` (three wrong codes lock it).
    fn confirm_code(
        &self,
        phone: &Contact,
        code: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<CodeCheck, StoreError>> + Send;

    /// STOP (`true`) or START (`false`) for a phone number; the subscriber if it changed.
    fn set_opted_out(
        &self,
        phone: &Contact,
        out: bool,
    ) -> impl Future<Output = Result<Option<Subscriber>, StoreError>> + Send;

    /// Marks a subscriber opted out by id (a send refused with Twilio error 21610); whether it
    /// changed.
    fn opt_out_id(&self, id: Ulid) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes sign-ups left unconfirmed since before `cutoff`
    /// ([`crate::domain::signup::unconfirmed_since`]); how many. Idempotent.
    fn purge_unconfirmed(
        &self,
        cutoff: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

/// Recurring notices (the scheduler fires them).
pub trait Notices {
    /// Saves a notice (new or changed). Durable.
    fn put_notice(&self, n: &Notice) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One notice.
    fn notice(&self, id: Ulid) -> impl Future<Output = Result<Notice, StoreError>> + Send;

    /// Every notice, oldest first.
    fn notices(&self) -> impl Future<Output = Result<Vec<Notice>, StoreError>> + Send;

    /// Removes a notice and returns it; its past firings stay. Durable.
    fn remove_notice(&self, id: Ulid) -> impl Future<Output = Result<Notice, StoreError>> + Send;
}

/// Flap hold-downs: an incident whose resolution waits to see whether it stays resolved.
pub trait Holds {
    /// Starts or extends a hold-down. Durable.
    fn put_hold(&self, h: &Hold) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The hold on an incident, if any.
    fn hold(&self, incident: Ulid)
        -> impl Future<Output = Result<Option<Hold>, StoreError>> + Send;

    /// Every hold.
    fn holds(&self) -> impl Future<Output = Result<Vec<Hold>, StoreError>> + Send;

    /// Ends a hold. Durable.
    fn remove_hold(&self, incident: Ulid) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Standalone messages (a notice's firing, a reminder): posted through the outbox like an
/// update, keyed by (origin, seq) with a seq derived from what the message is for, so posting
/// one twice does nothing.
pub trait Standalones {
    /// Posts `msg` to the `broadcast` channels (name, sends to subscribers), once: the message's
    /// record and its broadcasts, durably; `false` (nothing written) if (origin, seq) was
    /// posted before.
    fn post_standalone(
        &self,
        msg: &Standalone,
        broadcast: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The standalone message (origin, seq), if it was posted.
    fn standalone(
        &self,
        origin: Ulid,
        seq: u32,
    ) -> impl Future<Output = Result<Option<Standalone>, StoreError>> + Send;

    /// Every standalone message of an origin (a notice's firings, an incident's reminders).
    fn standalones_of(
        &self,
        origin: Ulid,
    ) -> impl Future<Output = Result<Vec<Standalone>, StoreError>> + Send;
}

/// The handle dispatches each method to the open backend.
impl Subscribers for Store {
    async fn add_subscriber(
        &self,
        new: NewSubscriber,
        now: DateTime<Utc>,
    ) -> Result<Subscriber, StoreError> {
        match self {
            Store::Sled(s) => s.add_subscriber(new, now).await,
            Store::Pg(p) => p.add_subscriber(new, now).await,
        }
    }

    async fn import_subscribers(
        &self,
        batch: Vec<NewSubscriber>,
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StoreError> {
        match self {
            Store::Sled(s) => s.import_subscribers(batch, now).await,
            Store::Pg(p) => p.import_subscribers(batch, now).await,
        }
    }

    async fn subscribers(&self, limit: usize) -> Result<Vec<Subscriber>, StoreError> {
        match self {
            Store::Sled(s) => s.subscribers(limit).await,
            Store::Pg(p) => p.subscribers(limit).await,
        }
    }

    async fn subscribers_where(
        &self,
        limit: usize,
        keep: impl FnMut(&Subscriber) -> bool + Send,
    ) -> Result<Vec<Subscriber>, StoreError> {
        match self {
            Store::Sled(s) => s.subscribers_where(limit, keep).await,
            Store::Pg(p) => p.subscribers_where(limit, keep).await,
        }
    }

    async fn subscriber_count(&self) -> Result<usize, StoreError> {
        match self {
            Store::Sled(s) => s.subscriber_count().await,
            Store::Pg(p) => p.subscriber_count().await,
        }
    }

    async fn subscriber_standing(&self, id: Ulid) -> Result<Option<bool>, StoreError> {
        match self {
            Store::Sled(s) => s.subscriber_standing(id).await,
            Store::Pg(p) => p.subscriber_standing(id).await,
        }
    }

    async fn subscriber_by_token(&self, token: &str) -> Result<Option<Subscriber>, StoreError> {
        match self {
            Store::Sled(s) => s.subscriber_by_token(token).await,
            Store::Pg(p) => p.subscriber_by_token(token).await,
        }
    }

    async fn change_subscriber(
        &self,
        key: &str,
        locale: Option<Locale>,
        components: Option<Vec<ComponentName>>,
    ) -> Result<(Subscriber, Subscriber), StoreError> {
        match self {
            Store::Sled(s) => s.change_subscriber(key, locale, components).await,
            Store::Pg(p) => p.change_subscriber(key, locale, components).await,
        }
    }

    async fn remove_subscriber(&self, key: &str) -> Result<Subscriber, StoreError> {
        match self {
            Store::Sled(s) => s.remove_subscriber(key).await,
            Store::Pg(p) => p.remove_subscriber(key).await,
        }
    }

    async fn unsubscribe(&self, token: &str) -> Result<Subscriber, StoreError> {
        match self {
            Store::Sled(s) => s.unsubscribe(token).await,
            Store::Pg(p) => p.unsubscribe(token).await,
        }
    }
}

impl SignUps for Store {
    async fn sign_up(
        &self,
        contact: Contact,
        locale: Locale,
        components: Vec<ComponentName>,
        secret: &Secret,
        valid: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<SignUp, StoreError> {
        match self {
            Store::Sled(s) => {
                s.sign_up(contact, locale, components, secret, valid, now)
                    .await
            }
            Store::Pg(p) => {
                p.sign_up(contact, locale, components, secret, valid, now)
                    .await
            }
        }
    }

    async fn confirm_link(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Subscriber>, StoreError> {
        match self {
            Store::Sled(s) => s.confirm_link(token, now).await,
            Store::Pg(p) => p.confirm_link(token, now).await,
        }
    }

    async fn confirm_code(
        &self,
        phone: &Contact,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeCheck, StoreError> {
        match self {
            Store::Sled(s) => s.confirm_code(phone, code, now).await,
            Store::Pg(p) => p.confirm_code(phone, code, now).await,
        }
    }

    async fn set_opted_out(
        &self,
        phone: &Contact,
        out: bool,
    ) -> Result<Option<Subscriber>, StoreError> {
        match self {
            Store::Sled(s) => s.set_opted_out(phone, out).await,
            Store::Pg(p) => p.set_opted_out(phone, out).await,
        }
    }

    async fn opt_out_id(&self, id: Ulid) -> Result<bool, StoreError> {
        match self {
            Store::Sled(s) => s.opt_out_id(id).await,
            Store::Pg(p) => p.opt_out_id(id).await,
        }
    }

    async fn purge_unconfirmed(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        match self {
            Store::Sled(s) => s.purge_unconfirmed(cutoff).await,
            Store::Pg(p) => p.purge_unconfirmed(cutoff).await,
        }
    }
}

impl Notices for Store {
    async fn put_notice(&self, n: &Notice) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.put_notice(n).await,
            Store::Pg(p) => p.put_notice(n).await,
        }
    }

    async fn notice(&self, id: Ulid) -> Result<Notice, StoreError> {
        match self {
            Store::Sled(s) => s.notice(id).await,
            Store::Pg(p) => p.notice(id).await,
        }
    }

    async fn notices(&self) -> Result<Vec<Notice>, StoreError> {
        match self {
            Store::Sled(s) => s.notices().await,
            Store::Pg(p) => p.notices().await,
        }
    }

    async fn remove_notice(&self, id: Ulid) -> Result<Notice, StoreError> {
        match self {
            Store::Sled(s) => s.remove_notice(id).await,
            Store::Pg(p) => p.remove_notice(id).await,
        }
    }
}

impl Holds for Store {
    async fn put_hold(&self, h: &Hold) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.put_hold(h).await,
            Store::Pg(p) => p.put_hold(h).await,
        }
    }

    async fn hold(&self, incident: Ulid) -> Result<Option<Hold>, StoreError> {
        match self {
            Store::Sled(s) => s.hold(incident).await,
            Store::Pg(p) => p.hold(incident).await,
        }
    }

    async fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        match self {
            Store::Sled(s) => s.holds().await,
            Store::Pg(p) => p.holds().await,
        }
    }

    async fn remove_hold(&self, incident: Ulid) -> Result<(), StoreError> {
        match self {
            Store::Sled(s) => s.remove_hold(incident).await,
            Store::Pg(p) => p.remove_hold(incident).await,
        }
    }
}

impl Standalones for Store {
    async fn post_standalone(
        &self,
        msg: &Standalone,
        broadcast: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sled(s) => s.post_standalone(msg, broadcast, now).await,
            Store::Pg(p) => p.post_standalone(msg, broadcast, now).await,
        }
    }

    async fn standalone(&self, origin: Ulid, seq: u32) -> Result<Option<Standalone>, StoreError> {
        match self {
            Store::Sled(s) => s.standalone(origin, seq).await,
            Store::Pg(p) => p.standalone(origin, seq).await,
        }
    }

    async fn standalones_of(&self, origin: Ulid) -> Result<Vec<Standalone>, StoreError> {
        match self {
            Store::Sled(s) => s.standalones_of(origin).await,
            Store::Pg(p) => p.standalones_of(origin).await,
        }
    }
}
