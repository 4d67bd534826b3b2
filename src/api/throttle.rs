//! Failed-login throttling, in memory: per user name and per client address, a fixed number of
//! failures within a window locks further attempts until the window has passed since the
//! first of them. A locked attempt is answered 429 before any password is checked, whether the
//! user exists or not, so the lock tells nothing about who exists. A successful login clears
//! the user's count (not the address's). Restarting crier forgets the counts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Failures per user name before it is locked.
pub const USER_FAILURES: u32 = 5;
/// Failures per client address before it is locked (an office shares one address).
pub const ADDR_FAILURES: u32 = 20;
/// The window the failures are counted in, and how long a lock lasts at most.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept before old ones are dropped.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Addr(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Count {
    first: Instant,
    failures: u32,
}

/// The failure counts.
#[derive(Default)]
pub struct Throttle {
    counts: Mutex<HashMap<Key, Count>>,
}

impl Throttle {
    fn keys(user: &str, addr: Option<IpAddr>) -> Vec<(Key, u32)> {
        let mut k = vec![(Key::User(user.trim().to_lowercase()), USER_FAILURES)];
        if let Some(a) = addr {
            k.push((Key::Addr(a), ADDR_FAILURES));
        }
        k
    }

    /// How long until `user` from `addr` may try again, if it is locked now.
    pub fn locked(&self, user: &str, addr: Option<IpAddr>) -> Option<Duration> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        Self::keys(user, addr)
            .into_iter()
            .filter_map(|(k, limit)| {
                let c = counts.get(&k)?;
                let ends = c.first + WINDOW;
                (c.failures >= limit && now < ends).then(|| ends - now)
            })
            .max()
    }

    /// Counts a failed attempt.
    pub fn failed(&self, user: &str, addr: Option<IpAddr>) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if counts.len() >= MAX_KEYS {
            counts.retain(|_, c| now < c.first + WINDOW);
            if counts.len() >= MAX_KEYS {
                counts.clear();
            }
        }
        for (k, _) in Self::keys(user, addr) {
            let c = counts.entry(k).or_insert(Count {
                first: now,
                failures: 0,
            });
            if now >= c.first + WINDOW {
                *c = Count {
                    first: now,
                    failures: 0,
                };
            }
            c.failures += 1;
        }
    }

    /// Clears the user's count after a successful login.
    pub fn succeeded(&self, user: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.remove(&Key::User(user.trim().to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_user_is_locked_after_n_failures_until_the_window_passes() {
        let t = Throttle::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..USER_FAILURES {
            assert!(t.locked("maria", Some(a)).is_none());
            t.failed("Maria", Some(a));
        }
        let wait = t.locked("maria", Some(a)).unwrap();
        assert_eq!(wait, WINDOW);
        // Another user from the same address is not locked yet.
        assert!(t.locked("jussi", Some(a)).is_none());
        tokio::time::advance(WINDOW - Duration::from_secs(1)).await;
        assert!(t.locked("maria", None).is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(t.locked("maria", Some(a)).is_none());
        // A new window starts counting from zero.
        t.failed("maria", Some(a));
        assert!(t.locked("maria", Some(a)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_is_locked_after_n_failures_over_many_names() {
        let t = Throttle::default();
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        for i in 0..ADDR_FAILURES {
            assert!(t.locked(&format!("u{i}"), Some(a)).is_none());
            t.failed(&format!("u{i}"), Some(a));
        }
        assert!(t.locked("someone-new", Some(a)).is_some());
        assert!(t
            .locked("someone-new", Some("192.0.2.8".parse().unwrap()))
            .is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn success_clears_the_users_count() {
        let t = Throttle::default();
        for _ in 0..USER_FAILURES - 1 {
            t.failed("maria", None);
        }
        t.succeeded("maria");
        t.failed("maria", None);
        assert!(t.locked("maria", None).is_none());
    }
}
