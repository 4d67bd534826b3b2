//! Inbound: what providers send to crier, checked before anything is believed. Twilio's status
//! callbacks and inbound messages (form decoding and `X-Twilio-Signature`), and the HMAC of
//! signed webhooks (`X-Crier-Signature`). The outbound adapters (`adapters/`) only send.

pub mod twilio;
pub mod webhook;
