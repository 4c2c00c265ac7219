//! Time-ordered, prefixed ids: `evt_…`, `rcv_…`, `dlv_…`, `acc_…`, `usr_…`.
//!
//! UUIDv7 keeps ids ordered by creation time, so a key scan over ids is a scan in time
//! order (the webhook log lists newest first by scanning backwards).

/// A new id with the given prefix, e.g. `new("evt")` → `evt_0190c1…`.
pub fn new(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// True when `id` looks like an id with that prefix; used to reject junk early.
pub fn is_valid(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_unique_and_time_ordered() {
        let a = new("evt");
        let b = new("evt");
        assert!(is_valid("evt", &a));
        assert!(!is_valid("rcv", &a));
        assert!(!is_valid("evt", "evt_../../etc"));
        assert_ne!(a, b);
        assert!(a < b, "{a} should sort before {b}");
    }
}
