//! The contract of subscribers and their sign-ups, notices, hold-downs and standalone messages (Subscribers, SignUps, Notices, Holds, Standalones), run on both backends.
