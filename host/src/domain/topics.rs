//! The topic catalog and topic patterns.
//!
//! Adding a topic is one line in [`BUILT_IN`] (or a `[[topics]]` entry in the config).
//! A pattern is a dot-separated topic where a `*` segment matches any one segment,
//! There is no multi-segment wildcard, on purpose: patterns stay predictable.

use serde::{Deserialize, Serialize};

/// A topic with its description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// E.g. `Accounts.Update`.
    pub name: String,
    /// What it means.
    pub description: String,
}

/// The topics every tenant has.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("Accounts.Create", "A user account was created."),
    ("Accounts.Update", "A user account was changed."),
    ("Accounts.Delete", "A user account was deleted."),
    ("ApiAccounts.Create", "An API account was created."),
    (
        "ApiAccounts.Update",
        "An API account was changed, rotated or disabled.",
    ),
    ("ApiAccounts.Delete", "An API account was deleted."),
    ("Receivers.Create", "A webhook receiver was added."),
    ("Receivers.Update", "A webhook receiver was changed."),
    ("Receivers.Delete", "A webhook receiver was removed."),
    ("Cases.Create", "A case was opened."),
    ("Cases.Update", "A case was changed."),
    ("Cases.Close", "A case was closed."),
];

/// True when `name` is a well-formed topic: dot-separated segments of letters, digits, `-`, `_`.
pub fn is_valid_name(name: &str) -> bool {
    name.len() <= 200
        && name.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// True when `pattern` is well-formed: like a topic, but a segment may be `*`.
pub fn is_valid_pattern(pattern: &str) -> bool {
    pattern.len() <= 200
        && pattern
            .split('.')
            .all(|seg| seg == "*" || is_valid_name(seg))
}

/// True when `topic` matches `pattern` (`*` matches exactly one segment).
pub fn matches(pattern: &str, topic: &str) -> bool {
    let mut pattern = pattern.split('.');
    let mut topic = topic.split('.');
    loop {
        match (pattern.next(), topic.next()) {
            (None, None) => return true,
            (Some(p), Some(t)) if p == "*" || p == t => continue,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_topics_match_only_themselves() {
        assert!(matches("Accounts.Update", "Accounts.Update"));
        assert!(!matches("Accounts.Update", "Accounts.Create"));
        assert!(!matches("Accounts.Update", "Accounts.Update.Extra"));
        assert!(!matches("Accounts", "Accounts.Update"));
    }

    #[test]
    fn a_star_matches_one_segment() {
        assert!(matches("Accounts.*", "Accounts.Update"));
        assert!(matches("*.Update", "Cases.Update"));
        assert!(matches("*.*", "Cases.Update"));
        assert!(!matches("Accounts.*", "ApiAccounts.Update"));
        assert!(!matches("Accounts.*", "Accounts"));
        assert!(!matches("*", "Accounts.Update"));
    }

    #[test]
    fn matching_is_case_sensitive() {
        assert!(!matches("accounts.update", "Accounts.Update"));
    }

    #[test]
    fn names_and_patterns_are_validated() {
        assert!(is_valid_name("Accounts.Update"));
        assert!(!is_valid_name("Accounts..Update"));
        assert!(!is_valid_name("Accounts.*"));
        assert!(!is_valid_name(""));
        assert!(is_valid_pattern("Accounts.*"));
        assert!(is_valid_pattern("*"));
        assert!(!is_valid_pattern("Acc*.Update"));
        assert!(!is_valid_pattern("Accounts. Update"));
    }

    #[test]
    fn built_in_topics_are_valid_and_unique() {
        let mut names: Vec<_> = BUILT_IN.iter().map(|(n, _)| *n).collect();
        assert!(names.iter().all(|n| is_valid_name(n)));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BUILT_IN.len());
    }
}
