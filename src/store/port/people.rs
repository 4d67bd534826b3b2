//! The people aggregates of the port: users, API tokens, browser sessions and TOTP. Filled in by
//! the port of issue 16.
