//! The audience aggregates of the port: subscribers and their sign-ups, notices, hold-downs and
//! standalone messages. Filled in by the port of issue 16.
