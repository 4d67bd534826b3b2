//! Social threads: for each (incident, channel), the platform's reference of the incident's first
//! post and of its latest one, so that every later update (and every later part of a long one)
//! is posted as a reply and readers follow one thread per incident.
//!
//! Key: incident ULID (16 bytes) ‖ channel name → JSON [`Thread`]. A reference is the adapter's
//! receipt for the post, kept as the platform gave it (a plain id, or Bluesky's `{"uri","cid"}`
//! JSON): the store does not interpret it. Writes are durable before they return, like every
//! other store write, so a restart never starts a second thread for an incident.

use super::port::Threads;
use super::{decode, SledStore, StoreError};
use crate::domain::Thread;
use ulid::Ulid;

fn thread_key(incident: Ulid, channel: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + channel.len());
    k.extend_from_slice(&incident.to_bytes());
    k.extend_from_slice(channel.as_bytes());
    k
}

impl Threads for SledStore {
    /// The thread of `incident` on `channel`, if something was posted there.
    async fn thread(&self, incident: Ulid, channel: &str) -> Result<Option<Thread>, StoreError> {
        let t = self.t()?;
        match t.threads.get(thread_key(incident, channel))? {
            Some(raw) => Ok(Some(decode(&raw)?)),
            None => Ok(None),
        }
    }

    /// Records `post` as the latest post of the incident's thread on `channel` (and as its root
    /// when it is the first), durably. Returns the thread as stored.
    async fn extend_thread(
        &self,
        incident: Ulid,
        channel: &str,
        post: &str,
    ) -> Result<Thread, StoreError> {
        let t = self.t()?;
        let key = thread_key(incident, channel);
        // One atomic read-modify-write, so concurrent senders never lose the root.
        let w = self.writing_async().await;
        let stored = t.threads.update_and_fetch(key, |old| {
            let root = old
                .and_then(|b| serde_json::from_slice::<Thread>(b).ok())
                .map_or_else(|| post.to_owned(), |t| t.root);
            let thread = Thread {
                root,
                last: post.to_owned(),
            };
            // Serialising two strings cannot fail; if it did, the old value stays.
            serde_json::to_vec(&thread)
                .ok()
                .or_else(|| old.map(<[u8]>::to_vec))
        })?;
        drop(w);
        let thread: Thread = match stored {
            Some(raw) => decode(&raw)?,
            None => return Err(StoreError::Corrupt("the thread record vanished".into())),
        };
        t.durable().await?;
        Ok(thread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_post_is_root_and_later_ones_move_last_durably() {
        let dir = tempfile::tempdir().unwrap();
        let inc = Ulid::new();
        {
            let store = SledStore::open(dir.path()).unwrap();
            assert_eq!(store.thread(inc, "mastodon").await.unwrap(), None);
            let t = store.extend_thread(inc, "mastodon", "101").await.unwrap();
            assert_eq!(t.root, "101");
            assert_eq!(t.last, "101");
            let t = store.extend_thread(inc, "mastodon", "102").await.unwrap();
            assert_eq!((t.root.as_str(), t.last.as_str()), ("101", "102"));
            // Another channel and another incident have their own threads.
            assert_eq!(store.thread(inc, "mastodon2").await.unwrap(), None);
            assert_eq!(store.thread(Ulid::new(), "mastodon").await.unwrap(), None);
            store.close().await.unwrap();
        }
        // Reopened: the thread is on disk.
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(
            store.thread(inc, "mastodon").await.unwrap(),
            Some(Thread {
                root: "101".into(),
                last: "102".into()
            })
        );
    }
}
