//! What the scheduler keeps: recurring notices, standalone messages (a notice's firing, a
//! next-update reminder to staff, a maintenance reminder) and flap hold-downs.
//!
//! Trees:
//! - `notices`: notice ULID → JSON [`Notice`]
//! - `messages`: origin ULID ‖ seq (u32 BE) → JSON [`Standalone`]
//! - `holds`: incident ULID → JSON [`Hold`]
//!
//! A standalone message goes through the same outbox as an update: its broadcasts and deliveries
//! are keyed by (origin, seq), with `seq` at or above [`STANDALONE_BASE`] so it can never collide
//! with a timeline position. The seq is derived from what the message is for (the notice's
//! scheduled minute, the update whose promise is being reminded of), so posting the same message
//! twice — after a crash, or from two ticks — finds the first record and does nothing: the record
//! of a firing is written before anything is sent, and a restart never fires twice.

use super::port::{Holds, Notices, Standalones};
use super::{decode, encode, outbox, SledStore, StoreError};
use crate::domain::standalone::STANDALONE_BASE;
use crate::domain::Notice;
use crate::domain::{Hold, Standalone};
use chrono::{DateTime, Utc};
use ulid::Ulid;

fn message_key(origin: Ulid, seq: u32) -> [u8; 20] {
    super::update_key(origin, seq)
}

impl Standalones for SledStore {
    /// Posts a standalone message to `broadcast` channels, once: if (origin, seq) was posted
    /// before, nothing is written and `false` is returned. Durable when it returns.
    async fn post_standalone(
        &self,
        msg: &Standalone,
        broadcast: &[(String, bool)],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let t = self.t()?;
        let key = message_key(msg.origin, msg.seq);
        {
            let _w = self.lock(msg.origin).await;
            if t.messages.contains_key(key)? {
                return Ok(false);
            }
            // Broadcasts first, then the record: the expander skips broadcasts whose message is
            // missing, and a crash in between leaves no record, so the message is posted again.
            self.write_broadcasts(&t, msg.origin, msg.seq, msg.update_id, broadcast, now)?;
            t.messages.insert(key, encode(msg)?)?;
        }
        t.durable().await?;
        Ok(true)
    }

    /// The standalone message (origin, seq), if it was posted.
    async fn standalone(&self, origin: Ulid, seq: u32) -> Result<Option<Standalone>, StoreError> {
        let t = self.t()?;
        if seq < STANDALONE_BASE {
            return Ok(None);
        }
        match t.messages.get(message_key(origin, seq))? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Ok(None),
        }
    }

    /// Every standalone message of an origin (a notice's firings, an incident's reminders).
    async fn standalones_of(&self, origin: Ulid) -> Result<Vec<Standalone>, StoreError> {
        let t = self.t()?;
        t.messages
            .scan_prefix(origin.to_bytes())
            .values()
            .map(|v| decode(&v?))
            .collect()
    }
}

impl Notices for SledStore {
    /// Saves a notice (new or changed). Durable when it returns.
    async fn put_notice(&self, n: &Notice) -> Result<(), StoreError> {
        let t = self.t()?;
        {
            let _w = self.writing_async().await;
            t.notices.insert(n.id.to_bytes(), encode(n)?)?;
        }
        t.durable().await
    }

    /// One notice.
    async fn notice(&self, id: Ulid) -> Result<Notice, StoreError> {
        let t = self.t()?;
        let raw = t
            .notices
            .get(id.to_bytes())?
            .ok_or_else(|| StoreError::NotFound {
                what: "notice",
                id: id.to_string(),
            })?;
        decode(&raw)
    }

    /// Every notice, oldest first.
    async fn notices(&self) -> Result<Vec<Notice>, StoreError> {
        let t = self.t()?;
        t.notices.iter().values().map(|v| decode(&v?)).collect()
    }

    /// Removes a notice; its past firings stay in the outbox. Durable when it returns.
    async fn remove_notice(&self, id: Ulid) -> Result<Notice, StoreError> {
        let t = self.t()?;
        let n = self.notice(id).await?;
        {
            let _w = self.writing_async().await;
            t.notices.remove(id.to_bytes())?;
        }
        t.durable().await?;
        Ok(n)
    }
}

impl Holds for SledStore {
    /// Starts or extends a hold-down. Durable when it returns.
    async fn put_hold(&self, h: &Hold) -> Result<(), StoreError> {
        let t = self.t()?;
        {
            let _w = self.writing_async().await;
            t.holds.insert(h.incident_id.to_bytes(), encode(h)?)?;
        }
        t.durable().await
    }

    /// The hold on an incident, if any.
    async fn hold(&self, incident: Ulid) -> Result<Option<Hold>, StoreError> {
        let t = self.t()?;
        match t.holds.get(incident.to_bytes())? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Ok(None),
        }
    }

    /// Every hold.
    async fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        let t = self.t()?;
        t.holds.iter().values().map(|v| decode(&v?)).collect()
    }

    /// Ends a hold. Durable when it returns.
    async fn remove_hold(&self, incident: Ulid) -> Result<(), StoreError> {
        let t = self.t()?;
        {
            let _w = self.writing_async().await;
            t.holds.remove(incident.to_bytes())?;
        }
        t.durable().await
    }
}

impl SledStore {
    /// Broadcasts of standalone messages are not timeline broadcasts: `repair` must leave them.
    pub(crate) fn standalone_broadcast_floor(incident: Ulid) -> Vec<u8> {
        outbox::broadcast_key(incident, STANDALONE_BASE, "").to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::standalone::{
        maintenance_reminder_seq, notice_seq, notice_seq_instant, reminder_seq, StandaloneKind,
    };
    use crate::domain::{Body, Locale};
    use crate::store::port::Outbox;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn seqs_are_standalone_distinct_and_round_trip() {
        let t = at("2026-11-23T09:00:00Z");
        let s = notice_seq(t);
        assert!(s >= STANDALONE_BASE);
        assert_eq!(notice_seq_instant(s), Some(t));
        assert_ne!(notice_seq(t), notice_seq(at("2026-11-23T09:01:00Z")));
        assert_ne!(reminder_seq(3), maintenance_reminder_seq(3));
        assert_ne!(reminder_seq(3), reminder_seq(4));
        assert!(reminder_seq(1) >= STANDALONE_BASE);
    }

    #[tokio::test]
    async fn a_standalone_message_is_posted_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let origin = Ulid::new();
        let t = at("2026-11-23T09:00:00Z");
        let kind = StandaloneKind::Notice {
            notice_id: origin,
            scheduled_for: t,
            subject: "Weekly".into(),
            body: Body::single(Locale::english(), "Maintenance tonight").unwrap(),
        };
        let m = Standalone::new(origin, notice_seq(t), kind.clone(), t);
        let again = Standalone::new(origin, notice_seq(t), kind, t);
        assert_eq!(
            m.update_id, again.update_id,
            "the id is derived, not random"
        );
        let chans = vec![("log".to_string(), false)];
        assert!(store.post_standalone(&m, &chans, t).await.unwrap());
        assert!(!store.post_standalone(&again, &chans, t).await.unwrap());
        assert_eq!(store.broadcasts_of(origin).await.unwrap().len(), 1);
        assert_eq!(
            store.standalone(origin, m.seq).await.unwrap().as_ref(),
            Some(&m)
        );
        assert_eq!(store.standalone(origin, 1).await.unwrap(), None);
    }
}
