//! Fuzzes the binary delivery codec: decoding arbitrary bytes never panics, and whatever decodes
//! re-encodes to a record that decodes to the same delivery; a delivery built from structured
//! input survives `decode(encode(d)) == d`.
#![no_main]

use arbitrary::Arbitrary;
use chrono::{DateTime, TimeZone, Utc};
use crier::domain::{Contact, Delivery, DeliveryState, Locale, PhoneNumber, Target};
use crier::store::codec::{decode, encode};
use libfuzzer_sys::fuzz_target;
use ulid::Ulid;

#[derive(Debug, Arbitrary)]
enum Input {
    Bytes(Vec<u8>),
    Record(Record),
}

#[derive(Debug, Arbitrary)]
struct Record {
    id: u128,
    incident_id: u128,
    seq: u32,
    update_id: u128,
    channel: String,
    target: Option<Sub>,
    /// `None`: the key the expander makes (the hex of the id), which has its own encoding.
    idempotency_key: Option<String>,
    state: u8,
    attempts: u32,
    parts_done: u32,
    next_at: (i64, u32),
    last_error: Option<String>,
    receipt: Option<String>,
    provider_status: Option<String>,
    provider_error: Option<u32>,
    created_at: (i64, u32),
    updated_at: (i64, u32),
}

#[derive(Debug, Arbitrary)]
struct Sub {
    id: u128,
    phone: bool,
    address: String,
    locale: String,
    unsubscribe_token: String,
}

fn time((secs, nanos): (i64, u32)) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(secs, nanos).single()
}

fn delivery(r: Record) -> Option<Delivery> {
    let id = Ulid(r.id);
    let target = match r.target {
        None => Target::Endpoint,
        Some(s) => Target::Subscriber {
            id: Ulid(s.id),
            contact: if s.phone {
                // Only E.164-shaped numbers are stored (the codec checks them on the way back).
                Contact::Phone(PhoneNumber::from_stored(s.address).ok()?)
            } else {
                Contact::Email(s.address)
            },
            // Only valid tags are stored (the codec validates them on the way back).
            locale: Locale::parse(&s.locale).ok()?,
            unsubscribe_token: s.unsubscribe_token,
        },
    };
    let state = match r.state % 5 {
        0 => DeliveryState::Pending,
        1 => DeliveryState::InFlight,
        2 => DeliveryState::Delivered,
        3 => DeliveryState::Dead,
        _ => DeliveryState::Rejected,
    };
    Some(Delivery {
        id,
        incident_id: Ulid(r.incident_id),
        seq: r.seq,
        update_id: Ulid(r.update_id),
        channel: r.channel,
        target,
        idempotency_key: r.idempotency_key.unwrap_or_else(|| hex(&id.to_bytes())),
        state,
        attempts: r.attempts,
        parts_done: r.parts_done,
        next_at: time(r.next_at)?,
        last_error: r.last_error,
        receipt: r.receipt,
        provider_status: r.provider_status,
        provider_error: r.provider_error,
        created_at: time(r.created_at)?,
        updated_at: time(r.updated_at)?,
    })
}

fuzz_target!(|input: Input| match input {
    Input::Bytes(b) => {
        if let Ok(d) = decode(&b) {
            let again = encode(&d);
            assert_eq!(decode(&again).ok().as_ref(), Some(&d));
        }
    }
    Input::Record(r) => {
        let Some(mut d) = delivery(r) else {
            return;
        };
        let bytes = encode(&d);
        assert_eq!(decode(&bytes).ok().as_ref(), Some(&d));
        // The same record with the expander's key (hex of the id) takes the short form.
        d.idempotency_key = hex(&d.id.to_bytes());
        let short = encode(&d);
        assert_eq!(decode(&short).ok().as_ref(), Some(&d));
    }
});

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
