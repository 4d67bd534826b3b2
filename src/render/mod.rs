//! Rendering: turning an update into each channel's message. Today this holds the channel length
//! rules ([`rules`]): SMS segments, X weighted length, Mastodon, Bluesky graphemes and link facets,
//! and the too-long policies (thread, shorten, reject). Templates and preview build on them.

pub mod rules;
