//! How the store encodes deliveries: postcard after a format byte, times as milliseconds.
//!
//! Deliveries are the store's hottest values: each is written when its first attempt
//! ends, again after every retry, and sled copies a value whenever it writes or splits
//! the leaf that holds it. In JSON a delivery carried its field names, its body escaped
//! quote by quote and its times as RFC 3339 text; this encoding is about half the size
//! and needs no formatting or parsing of times. Values written before it (JSON, which
//! starts with `{`) are still read, and rewritten in this encoding when next stored.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{Error, Result};
use crate::domain::{Attempt, Delivery, DeliveryStatus, Timestamp};

/// The first byte of a delivery in this encoding (JSON starts with `{`).
const POSTCARD_V1: u8 = 1;

#[derive(Serialize, Deserialize)]
struct DeliveryRecord<'a> {
    id: Cow<'a, str>,
    tenant: Cow<'a, str>,
    receiver: Cow<'a, str>,
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

/// `delivery` as the store keeps it.
pub fn encode_delivery(delivery: &Delivery) -> Result<Vec<u8>> {
    let record = DeliveryRecord {
        id: Cow::Borrowed(&delivery.id),
        tenant: Cow::Borrowed(&delivery.tenant),
        receiver: Cow::Borrowed(&delivery.receiver),
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
        request_body: Cow::Borrowed(&delivery.request_body),
        content_type: Cow::Borrowed(&delivery.content_type),
        error: delivery.error.as_deref().map(Cow::Borrowed),
        created_ms: delivery.created_at.ms(),
        body_pruned: delivery.body_pruned,
    };
    // Room for it all at once: its text, plus a few bytes per number and length.
    let d = delivery;
    let text: usize = [
        &d.id,
        &d.tenant,
        &d.receiver,
        &d.event,
        &d.topic,
        &d.content_type,
        &d.request_body,
    ]
    .iter()
    .map(|s| s.len())
    .sum();
    let mut out = Vec::with_capacity(1 + text + 64 + d.attempts.len() * 32);
    out.push(POSTCARD_V1);
    postcard::to_extend(&record, out).map_err(corrupt)
}

/// A delivery the store kept, in this encoding or as JSON.
pub fn decode_delivery(bytes: &[u8]) -> Result<Delivery> {
    let Some((&POSTCARD_V1, rest)) = bytes.split_first() else {
        return serde_json::from_slice(bytes).map_err(corrupt);
    };
    let r: DeliveryRecord<'_> = postcard::from_bytes(rest).map_err(corrupt)?;
    Ok(Delivery {
        id: r.id.into_owned(),
        tenant: r.tenant.into_owned(),
        receiver: r.receiver.into_owned(),
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
        }
    }

    fn json(d: &Delivery) -> serde_json::Value {
        serde_json::to_value(d).expect("json")
    }

    #[test]
    fn a_delivery_comes_back_as_it_was_stored_in_fewer_bytes_than_as_json() {
        let d = delivery();
        let bytes = encode_delivery(&d).expect("encode");
        assert_eq!(json(&decode_delivery(&bytes).expect("decode")), json(&d));
        let as_json = serde_json::to_vec(&d).expect("json");
        assert!(bytes.len() * 3 < as_json.len() * 2, "{} bytes", bytes.len());
    }

    #[test]
    fn a_delivery_stored_as_json_by_an_older_version_is_read() {
        let d = delivery();
        let old = serde_json::to_vec(&d).expect("json");
        assert_eq!(json(&decode_delivery(&old).expect("decode")), json(&d));
    }

    #[test]
    fn damaged_bytes_are_corrupt_not_a_panic() {
        let bytes = encode_delivery(&delivery()).expect("encode");
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(matches!(
                decode_delivery(&bytes[..cut]),
                Err(Error::Corrupt(_))
            ));
        }
    }
}
