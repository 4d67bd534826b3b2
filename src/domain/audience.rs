//! Who a broadcast reaches: the audience rule every backend applies when it expands a
//! broadcast into deliveries, so a sled store and a PostgreSQL store send an update to exactly
//! the same subscribers.
//!
//! A subscriber is reached when they receive messages at all (confirmed, not opted out:
//! [`Subscriber::receives`]), follow one of the update's components (a subscriber who chose no
//! component follows all of them; an incident that names none concerns everyone), and the
//! channel can reach their contact (an SMS channel does not reach an email address: the channel's
//! own rule, passed in by the dispatcher).

use super::{ComponentName, Subscriber};

/// A channel as the expander needs to know it: which subscribers it reaches.
pub struct ExpandTarget<'a> {
    pub reaches: &'a (dyn Fn(&Subscriber) -> bool + Sync),
}

impl ExpandTarget<'_> {
    /// Whether a broadcast about `components` on this channel reaches `s`.
    pub fn reaches(&self, s: &Subscriber, components: &[ComponentName]) -> bool {
        s.receives() && follows(s, components) && (self.reaches)(s)
    }
}

/// Whether `s` follows an update about `components`: they chose no component (all of them), the
/// incident names none (it concerns everyone), or they share one.
pub fn follows(s: &Subscriber, components: &[ComponentName]) -> bool {
    s.components.is_empty()
        || components.is_empty()
        || s.components.iter().any(|c| components.contains(c))
}

/// What one expansion step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expanded {
    pub created: usize,
    pub done: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Contact, Locale};
    use chrono::Utc;
    use ulid::Ulid;

    fn names(list: &[&str]) -> Vec<ComponentName> {
        list.iter()
            .map(|c| ComponentName::parse(c).unwrap())
            .collect()
    }

    fn subscriber(contact: &str, components: &[&str]) -> Subscriber {
        Subscriber {
            id: Ulid::new(),
            contact: Contact::parse_any(contact).unwrap(),
            locale: Locale::english(),
            components: names(components),
            confirmed: true,
            unsubscribe_token: "t".into(),
            created_at: Utc::now(),
            opted_out: false,
            pending: None,
        }
    }

    #[test]
    fn a_subscriber_follows_their_components_and_everyone_follows_an_incident_naming_none() {
        let api = names(&["API"]);
        assert!(follows(&subscriber("a@example.com", &[]), &api));
        assert!(follows(&subscriber("a@example.com", &["Web", "API"]), &api));
        assert!(!follows(&subscriber("a@example.com", &["Web"]), &api));
        assert!(follows(&subscriber("a@example.com", &["Web"]), &[]));
    }

    #[test]
    fn a_broadcast_reaches_only_receiving_followers_the_channel_can_reach() {
        let email_only = |s: &Subscriber| matches!(s.contact, Contact::Email(_));
        let target = ExpandTarget {
            reaches: &email_only,
        };
        let api = names(&["API"]);
        let mut s = subscriber("a@example.com", &["API"]);
        assert!(target.reaches(&s, &api));
        assert!(!target.reaches(&subscriber("a@example.com", &["Web"]), &api));
        assert!(!target.reaches(&subscriber("+358401234567", &[]), &api));
        s.opted_out = true;
        assert!(!target.reaches(&s, &api));
        s.opted_out = false;
        s.confirmed = false;
        assert!(!target.reaches(&s, &api));
    }
}
