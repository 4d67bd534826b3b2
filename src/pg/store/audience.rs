//! PostgreSQL backend of the port's subscribers and their sign-ups, notices, hold-downs and standalone messages (Subscribers, SignUps, Notices, Holds, Standalones).
