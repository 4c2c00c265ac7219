//! How the store keys and encodes deliveries: postcard after a format byte, times as
//! milliseconds, under the key `tenant/receiver/id`.
//!
//! Deliveries are the store's hottest values: each is written when its first attempt
//! ends, again after every retry, and sled copies a value whenever it writes or splits
//! the leaf that holds it, at a cost that grows with its size (about 1.4 µs more per
//! insert for each 100 bytes, on the machine of docs/PERFORMANCE.md). In JSON a delivery
//! carried its field names, its body escaped quote by quote and its times as RFC 3339
//! text; postcard is about half the size and needs no formatting or parsing of times.
//! The tenant, receiver and id are in the key, so the value leaves them out. So does the
//! body when it is the event's payload (`Delivery::body_is_payload`): a flag after the
//! record says so, and the store reads the body from the event. Values of older versions
//! are still read: JSON (which starts with `{`), postcard with those three fields, and
//! postcard without the flag; they are rewritten in this encoding when next stored.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{Error, Result};
use crate::domain::{Attempt, Delivery, DeliveryStatus, Timestamp};

/// The first byte of a delivery in postcard with its tenant, receiver and id.
const POSTCARD_V1: u8 = 1;
/// The first byte of a delivery in postcard without them: they are in its key.
const POSTCARD_V2: u8 = 2;
/// The first byte of a delivery in postcard without them, followed by whether its body
/// is its event's payload, left out then.
const POSTCARD_V3: u8 = 3;

/// A delivery's key in `deliveries` and `in_flight`: its receiver's deliveries are one
/// range, in the order of their ids.
pub fn delivery_key(tenant: &str, receiver: &str, id: &str) -> String {
    format!("{tenant}/{receiver}/{id}")
}

/// The tenant, receiver and id in a delivery's key (tenant names and ids have no `/`).
fn split_delivery_key(key: &[u8]) -> Option<(&str, &str, &str)> {
    let mut parts = std::str::from_utf8(key).ok()?.splitn(3, '/');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// Everything but the tenant, receiver and id. Postcard writes a struct's fields in
/// order and nothing else, so a `POSTCARD_V1` value reads as those three strings
/// followed by this.
#[derive(Serialize, Deserialize)]
struct DeliveryRecord<'a> {
    event: Cow<'a, str>,
    topic: Cow<'a, str>,
    status: DeliveryStatus,
    status_code: Option<u16>,
    attempts: Vec<AttemptRecord<'a>>,
    next_attempt_ms: Option<u64>,
    request_body: Cow<'a, str>,
    content_type: Cow<'a, str>,
    error: Option<Cow<'a, str>>,
    created_ms: u64,
    body_pruned: bool,
}

#[derive(Serialize, Deserialize)]
struct AttemptRecord<'a> {
    at_ms: u64,
    status_code: Option<u16>,
    duration_ms: u64,
    error: Option<Cow<'a, str>>,
}

/// `delivery` as the store keeps it: without its body when that is its event's payload.
pub fn encode_delivery(delivery: &Delivery) -> Result<Vec<u8>> {
    let body_is_payload = delivery.body_is_payload && !delivery.body_pruned;
    let body = if body_is_payload {
        ""
    } else {
        &delivery.request_body
    };
    let record = DeliveryRecord {
        event: Cow::Borrowed(&delivery.event),
        topic: Cow::Borrowed(&delivery.topic),
        status: delivery.status,
        status_code: delivery.status_code,
        attempts: delivery
            .attempts
            .iter()
            .map(|a| AttemptRecord {
                at_ms: a.at.ms(),
                status_code: a.status_code,
                duration_ms: a.duration_ms,
                error: a.error.as_deref().map(Cow::Borrowed),
            })
            .collect(),
        next_attempt_ms: delivery.next_attempt_at.map(Timestamp::ms),
        request_body: Cow::Borrowed(body),
        content_type: Cow::Borrowed(&delivery.content_type),
        error: delivery.error.as_deref().map(Cow::Borrowed),
        created_ms: delivery.created_at.ms(),
        body_pruned: delivery.body_pruned,
    };
    // Room for it all at once: its text, plus a few bytes per number and length.
    let d = delivery;
    let text: usize = [&d.event, &d.topic, &d.content_type, body]
        .iter()
        .map(|s| s.len())
        .sum();
    let mut out = Vec::with_capacity(1 + text + 64 + d.attempts.len() * 32);
    out.push(POSTCARD_V3);
    postcard::to_extend(&(record, body_is_payload), out).map_err(corrupt)
}

/// The delivery the store kept under `key`, in any of its encodings.
pub fn decode_delivery(key: &[u8], bytes: &[u8]) -> Result<Delivery> {
    type Record<'a> = (Cow<'a, str>, Cow<'a, str>, Cow<'a, str>, DeliveryRecord<'a>);
    let from_key =
        || split_delivery_key(key).ok_or_else(|| corrupt(format!("not a delivery key: {key:?}")));
    let ((tenant, receiver, id, r), body_is_payload): (Record<'_>, bool) = match bytes.split_first()
    {
        Some((&POSTCARD_V3, rest)) => {
            let (tenant, receiver, id) = from_key()?;
            let (r, body_is_payload) = postcard::from_bytes(rest).map_err(corrupt)?;
            (
                (tenant.into(), receiver.into(), id.into(), r),
                body_is_payload,
            )
        }
        Some((&POSTCARD_V2, rest)) => {
            let (tenant, receiver, id) = from_key()?;
            let r = postcard::from_bytes(rest).map_err(corrupt)?;
            ((tenant.into(), receiver.into(), id.into(), r), false)
        }
        Some((&POSTCARD_V1, rest)) => {
            let (id, tenant, receiver, r): Record<'_> =
                postcard::from_bytes(rest).map_err(corrupt)?;
            ((tenant, receiver, id, r), false)
        }
        _ => return serde_json::from_slice(bytes).map_err(corrupt),
    };
    Ok(Delivery {
        id: id.into_owned(),
        tenant: tenant.into_owned(),
        receiver: receiver.into_owned(),
        event: r.event.into_owned(),
        topic: r.topic.into_owned(),
        status: r.status,
        status_code: r.status_code,
        attempts: r
            .attempts
            .into_iter()
            .map(|a| Attempt {
                at: Timestamp(a.at_ms),
                status_code: a.status_code,
                duration_ms: a.duration_ms,
                error: a.error.map(Cow::into_owned),
            })
            .collect(),
        next_attempt_at: r.next_attempt_ms.map(Timestamp),
        request_body: r.request_body.into_owned(),
        content_type: r.content_type.into_owned(),
        error: r.error.map(Cow::into_owned),
        created_at: Timestamp(r.created_ms),
        body_pruned: r.body_pruned,
        body_is_payload,
    })
}

fn corrupt(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::Corrupt(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            id: "dlv_1".into(),
            tenant: "t".into(),
            receiver: "rcv_1".into(),
            event: "evt_1".into(),
            topic: "Cases.Update".into(),
            status: DeliveryStatus::Retrying,
            status_code: Some(503),
            attempts: vec![Attempt {
                at: Timestamp(1_700_000_000_123),
                status_code: Some(503),
                duration_ms: 12,
                error: Some("HTTP 503".into()),
            }],
            next_attempt_at: Some(Timestamp(1_700_003_600_123)),
            request_body: r#"{"name": "ada \"the\" first"}"#.into(),
            content_type: "application/json".into(),
            error: None,
            created_at: Timestamp(1_700_000_000_000),
            body_pruned: false,
            body_is_payload: false,
        }
    }

    fn json(d: &Delivery) -> serde_json::Value {
        serde_json::to_value(d).expect("json")
    }

    const KEY: &[u8] = b"t/rcv_1/dlv_1";

    #[test]
    fn a_delivery_comes_back_as_it_was_stored_in_fewer_bytes_than_as_json() {
        let d = delivery();
        assert_eq!(delivery_key(&d.tenant, &d.receiver, &d.id).as_bytes(), KEY);
        let bytes = encode_delivery(&d).expect("encode");
        assert_eq!(
            json(&decode_delivery(KEY, &bytes).expect("decode")),
            json(&d)
        );
        let as_json = serde_json::to_vec(&d).expect("json");
        assert!(bytes.len() * 3 < as_json.len() * 2, "{} bytes", bytes.len());
    }

    #[test]
    fn the_tenant_receiver_and_id_come_from_the_key_not_the_value() {
        let d = Delivery {
            tenant: "acme-corp".into(),
            ..delivery()
        };
        let bytes = encode_delivery(&d).expect("encode");
        for part in [&d.tenant, &d.receiver, &d.id] {
            assert!(
                !bytes.windows(part.len()).any(|w| w == part.as_bytes()),
                "{part} is in the value"
            );
        }
        let moved = decode_delivery(b"u/rcv_2/dlv_9", &bytes).expect("decode");
        assert_eq!(
            (
                moved.tenant.as_str(),
                moved.receiver.as_str(),
                moved.id.as_str()
            ),
            ("u", "rcv_2", "dlv_9")
        );
        assert!(matches!(
            decode_delivery(b"t/dlv_1", &bytes),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn a_delivery_stored_by_an_older_version_is_read() {
        let d = delivery();
        let old = serde_json::to_vec(&d).expect("json");
        assert_eq!(json(&decode_delivery(KEY, &old).expect("decode")), json(&d));
        // Postcard writes a struct's fields in order and a tuple's items one after the
        // other: today's value is the record, then the flag of a body left out.
        let today = encode_delivery(&d).expect("encode");
        let record = &today[1..today.len() - 1];
        // The record alone.
        let v2 = [&[POSTCARD_V2], record].concat();
        assert_eq!(json(&decode_delivery(KEY, &v2).expect("decode")), json(&d));
        // With the tenant, receiver and id first.
        let mut v1 = vec![POSTCARD_V1];
        v1.extend(postcard::to_allocvec(&("dlv_1", "t", "rcv_1")).expect("encode"));
        v1.extend(record);
        // Read under the key of an older layout, as its migration does.
        let read = decode_delivery(b"t/dlv_1", &v1).expect("decode");
        assert_eq!(json(&read), json(&d));
    }

    #[test]
    fn a_body_that_is_the_events_payload_is_left_out_unless_pruned() {
        let d = Delivery {
            body_is_payload: true,
            ..delivery()
        };
        let whole = encode_delivery(&delivery()).expect("encode");
        let bytes = encode_delivery(&d).expect("encode");
        assert_eq!(bytes.len(), whole.len() - d.request_body.len());
        let read = decode_delivery(KEY, &bytes).expect("decode");
        assert!(read.body_is_payload && read.request_body.is_empty());
        assert_eq!(
            json(&Delivery {
                request_body: d.request_body.clone(),
                ..read
            }),
            json(&d)
        );
        // A pruned body is gone, from the event's side too.
        let pruned = Delivery {
            body_pruned: true,
            request_body: String::new(),
            ..d
        };
        let read =
            decode_delivery(KEY, &encode_delivery(&pruned).expect("encode")).expect("decode");
        assert!(!read.body_is_payload && read.body_pruned);
    }

    #[test]
    fn damaged_bytes_are_corrupt_not_a_panic() {
        let bytes = encode_delivery(&delivery()).expect("encode");
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(matches!(
                decode_delivery(KEY, &bytes[..cut]),
                Err(Error::Corrupt(_))
            ));
        }
    }
}
