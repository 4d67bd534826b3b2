//! A social thread: the platform's references of an incident's first and latest post on a
//! channel, so each later post replies to the latest and readers follow one thread per incident.
//! The references are the adapters' receipts, kept as the platform gave them.

use serde::{Deserialize, Serialize};

/// A platform's reference to one post (its receipt).
pub type PostRef = String;

/// The thread of one incident on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    /// The incident's first post on the channel.
    pub root: PostRef,
    /// The latest post: the next one replies to it.
    pub last: PostRef,
}
