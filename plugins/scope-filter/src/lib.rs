//! The default authorization filter: a receiver's API account gets a webhook only if it
//! holds the required permission and its data scope covers the event's subject.
//!
//! The rule, in order:
//! 1. When the setting `permission` is set, the principal must hold it (or `*`).
//! 2. An event without a subject is allowed.
//! 3. An event with a subject needs a principal with at least one scope entry, and
//!    every entry must cover the subject: for entry `attribute → values`, the subject's
//!    value of `attribute` must be one of `values`. A value `*` covers every value (and
//!    a subject without that attribute). A subject lacking a scoped attribute is denied.
//!    An entry whose attribute is `*` with value `*` is an unrestricted scope.

use switchyard_plugin_sdk::{
    AuthorizationFilter, Event, PluginInfo, Principal, Setting, Settings, Subject, export,
};

const WILDCARD: &str = "*";

/// Whether `principal`'s data scope covers `subject` (rule 3 above).
pub fn scope_covers(principal: &Principal, subject: &Subject) -> bool {
    if principal.scopes.is_empty() {
        return false;
    }
    principal.scopes.iter().all(|(attribute, values)| {
        let any_value = values.iter().any(|v| v == WILDCARD);
        if attribute == WILDCARD {
            return any_value;
        }
        match subject.attribute(attribute) {
            _ if any_value => true,
            Some(value) => values.iter().any(|v| v == value),
            None => false,
        }
    })
}

/// The whole rule.
pub fn allow(event: &Event, principal: &Principal, permission: Option<&str>) -> bool {
    if let Some(permission) = permission
        && !principal.has_permission(permission)
    {
        return false;
    }
    match &event.subject {
        None => true,
        Some(subject) => scope_covers(principal, subject),
    }
}

/// The plugin.
pub struct ScopeFilter;

impl AuthorizationFilter for ScopeFilter {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "scope-filter",
            env!("CARGO_PKG_VERSION"),
            "The receiver's API account must hold `permission` (when set) and its data scope must cover \
             the event's subject: for every scope entry, the subject's attribute must have one of the \
             entry's values (`*` = any value); a subject without a scoped attribute, or an account without \
             any scope, is denied. Events without a subject pass the scope check.",
        )
        .setting(Setting::optional(
            "permission",
            "A permission the account must hold to receive these webhooks, e.g. `accounts.read`.",
        ))
    }

    fn allow(event: &Event, principal: &Principal, settings: &Settings) -> bool {
        allow(event, principal, settings.get("permission"))
    }
}

export!(authorization_filter: ScopeFilter);

#[cfg(test)]
mod tests {
    use super::*;

    fn event(attributes: Option<&[(&str, &str)]>) -> Event {
        Event {
            id: "evt_1".into(),
            tenant: "acme".into(),
            topic: "Accounts.Update".into(),
            occurred_at_ms: 0,
            subject: attributes.map(|attrs| Subject {
                kind: "user".into(),
                id: "usr_1".into(),
                attributes: attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }),
            content_type: "application/json".into(),
            payload: b"{}".to_vec(),
        }
    }

    fn principal(permissions: &[&str], scopes: &[(&str, &[&str])]) -> Principal {
        Principal {
            id: "acc_1".into(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            scopes: scopes
                .iter()
                .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
                .collect(),
        }
    }

    const SALES: &[(&str, &str)] = &[("org-unit", "sales"), ("country", "nl")];

    #[test]
    fn events_without_subject_are_allowed() {
        assert!(allow(&event(None), &principal(&[], &[]), None));
    }

    #[test]
    fn the_permission_is_checked_first() {
        let p = principal(&["accounts.read"], &[("org-unit", &["sales"])]);
        assert!(allow(&event(Some(SALES)), &p, Some("accounts.read")));
        assert!(!allow(&event(Some(SALES)), &p, Some("accounts.write")));
        assert!(!allow(&event(None), &p, Some("accounts.write")));
        let admin = principal(&["*"], &[("*", &["*"])]);
        assert!(allow(&event(Some(SALES)), &admin, Some("accounts.write")));
    }

    #[test]
    fn a_subject_needs_a_scope() {
        assert!(!allow(&event(Some(SALES)), &principal(&["*"], &[]), None));
    }

    #[test]
    fn every_scope_entry_must_match() {
        let in_scope = principal(
            &[],
            &[("org-unit", &["sales", "support"]), ("country", &["nl"])],
        );
        assert!(allow(&event(Some(SALES)), &in_scope, None));
        let wrong_unit = principal(&[], &[("org-unit", &["support"])]);
        assert!(!allow(&event(Some(SALES)), &wrong_unit, None));
        let wrong_country = principal(&[], &[("org-unit", &["sales"]), ("country", &["de"])]);
        assert!(!allow(&event(Some(SALES)), &wrong_country, None));
    }

    #[test]
    fn a_missing_scoped_attribute_is_denied() {
        let p = principal(&[], &[("org-unit", &["sales"]), ("region", &["emea"])]);
        assert!(!allow(&event(Some(SALES)), &p, None));
    }

    #[test]
    fn wildcards_cover_any_value() {
        assert!(allow(
            &event(Some(SALES)),
            &principal(&[], &[("org-unit", &["*"])]),
            None
        ));
        assert!(allow(
            &event(Some(&[])),
            &principal(&[], &[("org-unit", &["*"])]),
            None
        ));
        assert!(allow(
            &event(Some(&[])),
            &principal(&[], &[("*", &["*"])]),
            None
        ));
        // `*` as an attribute without `*` as a value grants nothing.
        assert!(!allow(
            &event(Some(SALES)),
            &principal(&[], &[("*", &["sales"])]),
            None
        ));
    }

    #[test]
    fn empty_value_lists_deny() {
        assert!(!allow(
            &event(Some(SALES)),
            &principal(&[], &[("org-unit", &[])]),
            None
        ));
    }
}
