use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::Timestamp;

/// Who or what an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// The kind of subject, e.g. `user`.
    pub kind: String,
    /// Its id.
    pub id: String,
    /// Attributes that authorization filters look at, e.g. `{"org_unit": "sales"}`.
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// One published event.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// `evt_…`
    pub id: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// Its topic, e.g. `Accounts.Update`.
    pub topic: String,
    /// Who or what it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// The payload as published.
    // Compact JSON text (see `Event::payload_of`), formatted once: the journal, the store
    // and the plugins take it as it is.
    #[schema(value_type = serde_json::Value)]
    pub payload: Box<RawValue>,
    /// When it was published.
    pub occurred_at: Timestamp,
    /// The account that published it (or caused it).
    pub published_by: String,
}

impl Event {
    /// The payload's bytes, as plugins get it and the `json` transform sends it: the same
    /// for an event read back from the store as for the one published.
    pub fn payload_bytes(&self) -> Vec<u8> {
        self.payload.get().as_bytes().to_vec()
    }

    /// `value` as an event's payload: compact JSON, formatted once.
    pub fn payload_of(value: &serde_json::Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(value).expect("a JSON value always has a JSON text")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_read_back_gives_its_payload_the_same_bytes() {
        // Numbers of every magnitude and precision: any whose digits changed on the way
        // would change the body of a delivery that is kept as its event's payload.
        let numbers: Vec<f64> = (0..20_000)
            .map(|_| f64::from_bits(rand::random::<u64>()))
            .filter(|n| n.is_finite())
            .collect();
        let event = Event {
            id: "evt_1".into(),
            tenant: "t".into(),
            topic: "Cases.Update".into(),
            subject: None,
            payload: Event::payload_of(
                &serde_json::json!({"numbers": numbers, "text": "é \"q\" \u{1}", "n": u64::MAX}),
            ),
            occurred_at: Timestamp(1),
            published_by: "acc_1".into(),
        };
        let stored = serde_json::to_vec(&event).expect("encode");
        let read: Event = serde_json::from_slice(&stored).expect("decode");
        assert_eq!(read.payload_bytes(), event.payload_bytes());
    }
}
