//! A compact binary encoding for delivery records.
//!
//! Deliveries are the one record crier writes per recipient, several times each (expansion, the
//! outcome, provider callbacks), so their size is paid for a million times over: in encoding
//! time, in sled's copy-on-write of the leaf that holds them, in its page cache and in its log.
//! JSON spelled every field name and every time as RFC 3339 text (≈ 600 bytes); this encoding
//! is ≈ 190 bytes and needs no escaping or number formatting.
//!
//! Layout (integers big-endian; `str` is a u32 length and UTF-8 bytes; `time` is i64 seconds
//! and u32 nanoseconds since the Unix epoch; `opt<T>` is a 0/1 byte, then T if 1):
//!
//! ```text
//! 0x01 version | id 16 | incident_id 16 | seq u32 | update_id 16 | channel str
//! target: 0 = endpoint | 1 = subscriber: id 16, contact (0 email | 1 phone) str, locale str,
//!         unsubscribe_token str
//! idempotency_key: 0 = the hex of id (how the expander makes them) | 1 = str
//! state u8 | attempts u32 | parts_done u32 | next_at time | last_error opt<str>
//! receipt opt<str> | provider_status opt<str> | provider_error opt<u32>
//! created_at time | updated_at time
//! ```
//!
//! Records written by earlier versions are JSON, which always starts with `{`; [`decode`] reads
//! both, so an existing data dir needs no migration.

use super::StoreError;
use crate::domain::{Contact, Delivery, DeliveryState, Locale, PhoneNumber, Target};
use chrono::{DateTime, TimeZone, Utc};
use ulid::Ulid;

const VERSION: u8 = 1;

/// Encodes a delivery record.
pub fn encode(d: &Delivery) -> Vec<u8> {
    let mut w = Vec::with_capacity(192 + d.last_error.as_ref().map_or(0, String::len));
    w.push(VERSION);
    w.extend_from_slice(&d.id.to_bytes());
    w.extend_from_slice(&d.incident_id.to_bytes());
    w.extend_from_slice(&d.seq.to_be_bytes());
    w.extend_from_slice(&d.update_id.to_bytes());
    put_str(&mut w, &d.channel);
    match &d.target {
        Target::Endpoint => w.push(0),
        Target::Subscriber {
            id,
            contact,
            locale,
            unsubscribe_token,
        } => {
            w.push(1);
            w.extend_from_slice(&id.to_bytes());
            match contact {
                Contact::Email(a) => {
                    w.push(0);
                    put_str(&mut w, a);
                }
                Contact::Phone(p) => {
                    w.push(1);
                    put_str(&mut w, p.as_str());
                }
            }
            put_str(&mut w, locale.as_str());
            put_str(&mut w, unsubscribe_token);
        }
    }
    if d.idempotency_key == hex::encode(d.id.to_bytes()) {
        w.push(0);
    } else {
        w.push(1);
        put_str(&mut w, &d.idempotency_key);
    }
    w.push(state_byte(d.state));
    w.extend_from_slice(&d.attempts.to_be_bytes());
    w.extend_from_slice(&d.parts_done.to_be_bytes());
    put_time(&mut w, d.next_at);
    put_opt_str(&mut w, d.last_error.as_deref());
    put_opt_str(&mut w, d.receipt.as_deref());
    put_opt_str(&mut w, d.provider_status.as_deref());
    match d.provider_error {
        None => w.push(0),
        Some(e) => {
            w.push(1);
            w.extend_from_slice(&e.to_be_bytes());
        }
    }
    put_time(&mut w, d.created_at);
    put_time(&mut w, d.updated_at);
    w
}

/// Decodes a delivery record in this encoding, or in the JSON of earlier versions.
pub fn decode(b: &[u8]) -> Result<Delivery, StoreError> {
    match b.first() {
        Some(b'{') => super::decode(b),
        Some(&VERSION) => Reader { b, at: 1 }.delivery(),
        Some(v) => Err(StoreError::Corrupt(format!(
            "delivery record has unknown encoding version {v}"
        ))),
        None => Err(StoreError::Corrupt("empty delivery record".into())),
    }
}

fn state_byte(s: DeliveryState) -> u8 {
    match s {
        DeliveryState::Pending => 0,
        DeliveryState::InFlight => 1,
        DeliveryState::Delivered => 2,
        DeliveryState::Dead => 3,
        DeliveryState::Rejected => 4,
    }
}

fn put_str(w: &mut Vec<u8>, s: &str) {
    // A string over 4 GiB cannot reach here (request bodies are capped far below); saturate
    // rather than wrap if one ever did, and the reader reports the record as corrupt.
    let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
    w.extend_from_slice(&n.to_be_bytes());
    w.extend_from_slice(s.as_bytes());
}

fn put_opt_str(w: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => w.push(0),
        Some(s) => {
            w.push(1);
            put_str(w, s);
        }
    }
}

fn put_time(w: &mut Vec<u8>, t: DateTime<Utc>) {
    w.extend_from_slice(&t.timestamp().to_be_bytes());
    w.extend_from_slice(&t.timestamp_subsec_nanos().to_be_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err(StoreError::Corrupt(format!(
                "delivery record truncated at byte {} of {}",
                self.at,
                self.b.len()
            )));
        };
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn ulid(&mut self) -> Result<Ulid, StoreError> {
        Ok(Ulid::from_bytes(self.array()?))
    }

    fn string(&mut self) -> Result<String, StoreError> {
        let n = self.u32()? as usize;
        let raw = self.take(n)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| StoreError::Corrupt("delivery record holds invalid UTF-8".into()))
    }

    fn flag(&mut self) -> Result<bool, StoreError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            x => Err(self.bad(format!("flag {x}"))),
        }
    }

    fn opt_string(&mut self) -> Result<Option<String>, StoreError> {
        Ok(if self.flag()? {
            Some(self.string()?)
        } else {
            None
        })
    }

    fn time(&mut self) -> Result<DateTime<Utc>, StoreError> {
        let secs = i64::from_be_bytes(self.array()?);
        let nanos = self.u32()?;
        Utc.timestamp_opt(secs, nanos)
            .single()
            .ok_or_else(|| self.bad(format!("time {secs}.{nanos}")))
    }

    fn bad(&self, what: String) -> StoreError {
        StoreError::Corrupt(format!(
            "delivery record has an invalid {what} before byte {}",
            self.at
        ))
    }

    fn delivery(mut self) -> Result<Delivery, StoreError> {
        let id = self.ulid()?;
        let incident_id = self.ulid()?;
        let seq = self.u32()?;
        let update_id = self.ulid()?;
        let channel = self.string()?;
        let target = match self.u8()? {
            0 => Target::Endpoint,
            1 => {
                let sid = self.ulid()?;
                let contact = match self.u8()? {
                    0 => Contact::Email(self.string()?),
                    1 => Contact::Phone(
                        PhoneNumber::from_stored(self.string()?)
                            .map_err(|e| StoreError::Corrupt(format!("delivery record {e}")))?,
                    ),
                    x => return Err(self.bad(format!("contact kind {x}"))),
                };
                let locale = Locale::parse(&self.string()?)
                    .map_err(|e| StoreError::Corrupt(format!("delivery record locale: {e}")))?;
                Target::Subscriber {
                    id: sid,
                    contact,
                    locale,
                    unsubscribe_token: self.string()?,
                }
            }
            x => return Err(self.bad(format!("target kind {x}"))),
        };
        let idempotency_key = if self.flag()? {
            self.string()?
        } else {
            hex::encode(id.to_bytes())
        };
        let state = match self.u8()? {
            0 => DeliveryState::Pending,
            1 => DeliveryState::InFlight,
            2 => DeliveryState::Delivered,
            3 => DeliveryState::Dead,
            4 => DeliveryState::Rejected,
            x => return Err(self.bad(format!("state {x}"))),
        };
        let attempts = self.u32()?;
        let parts_done = self.u32()?;
        let next_at = self.time()?;
        let last_error = self.opt_string()?;
        let receipt = self.opt_string()?;
        let provider_status = self.opt_string()?;
        let provider_error = if self.flag()? {
            Some(self.u32()?)
        } else {
            None
        };
        let created_at = self.time()?;
        let updated_at = self.time()?;
        if self.at != self.b.len() {
            return Err(self.bad(format!(
                "length ({} trailing bytes)",
                self.b.len() - self.at
            )));
        }
        Ok(Delivery {
            id,
            incident_id,
            seq,
            update_id,
            channel,
            target,
            idempotency_key,
            state,
            attempts,
            parts_done,
            next_at,
            last_error,
            receipt,
            provider_status,
            provider_error,
            created_at,
            updated_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Delivery {
        let id = Ulid::new();
        Delivery {
            id,
            incident_id: Ulid::new(),
            seq: 7,
            update_id: Ulid::new(),
            channel: "sms".into(),
            target: Target::Subscriber {
                id: Ulid::new(),
                contact: Contact::phone("+358401234567").unwrap(),
                locale: Locale::parse("fi").unwrap(),
                unsubscribe_token: "tok_abc".into(),
            },
            idempotency_key: hex::encode(id.to_bytes()),
            state: DeliveryState::Pending,
            attempts: 0,
            parts_done: 0,
            next_at: Utc.timestamp_opt(1_790_000_000, 123_456_789).unwrap(),
            last_error: None,
            receipt: None,
            provider_status: None,
            provider_error: None,
            created_at: Utc.timestamp_opt(1_790_000_000, 1).unwrap(),
            updated_at: Utc.timestamp_opt(1_790_000_001, 0).unwrap(),
        }
    }

    #[test]
    fn a_record_is_a_third_of_its_json_and_round_trips() {
        let d = sample();
        let bin = encode(&d);
        let json = serde_json::to_vec(&d).unwrap();
        assert_eq!(decode(&bin).unwrap(), d);
        assert!(
            bin.len() * 3 <= json.len(),
            "binary {} bytes, JSON {} bytes",
            bin.len(),
            json.len()
        );
    }

    #[test]
    fn json_records_of_earlier_versions_still_decode() {
        let mut d = sample();
        d.idempotency_key = "an explicit key".into();
        d.last_error = Some("HTTP 429".into());
        let json = serde_json::to_vec(&d).unwrap();
        assert_eq!(decode(&json).unwrap(), d);
    }

    #[test]
    fn damaged_records_are_reported_not_misread() {
        let bin = encode(&sample());
        for cut in [0, 1, 20, bin.len() - 1] {
            let err = decode(&bin[..cut]).unwrap_err().to_string();
            assert!(
                err.contains("truncated") || err.contains("empty"),
                "cut at {cut}: {err}"
            );
        }
        let mut longer = bin.clone();
        longer.push(0);
        assert!(decode(&longer)
            .unwrap_err()
            .to_string()
            .contains("trailing"));
        let mut bad_version = bin.clone();
        bad_version[0] = 9;
        assert!(decode(&bad_version)
            .unwrap_err()
            .to_string()
            .contains("version 9"));
    }

    fn arb_text() -> impl Strategy<Value = String> {
        "\\PC{0,40}"
    }

    proptest! {
        #[test]
        fn every_delivery_round_trips(
            seq in any::<u32>(),
            attempts in any::<u32>(),
            parts in any::<u32>(),
            state in 0u8..5,
            email in any::<bool>(),
            endpoint in any::<bool>(),
            own_key in any::<bool>(),
            channel in "[a-z0-9_-]{1,20}",
            token in arb_text(),
            last_error in proptest::option::of(arb_text()),
            receipt in proptest::option::of(arb_text()),
            status in proptest::option::of(arb_text()),
            perr in proptest::option::of(any::<u32>()),
            secs in -10_000_000_000i64..10_000_000_000,
            nanos in 0u32..1_000_000_000,
        ) {
            let mut d = sample();
            d.seq = seq;
            d.attempts = attempts;
            d.parts_done = parts;
            d.state = DeliveryState::ALL[state as usize];
            d.channel = channel;
            d.target = if endpoint {
                Target::Endpoint
            } else {
                Target::Subscriber {
                    id: Ulid::new(),
                    contact: if email {
                        Contact::Email("a@example.org".into())
                    } else {
                        Contact::phone("+12025550123").unwrap()
                    },
                    locale: Locale::parse("en-GB").unwrap(),
                    unsubscribe_token: token,
                }
            };
            if own_key {
                d.idempotency_key = "k-123".into();
            }
            d.last_error = last_error;
            d.receipt = receipt;
            d.provider_status = status;
            d.provider_error = perr;
            d.next_at = Utc.timestamp_opt(secs, nanos).unwrap();
            prop_assert_eq!(decode(&encode(&d)).unwrap(), d);
        }
    }
}
