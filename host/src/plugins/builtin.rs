//! The built-in plugins, built by `build.rs` and embedded in the binary.

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// Paths of plugins that exist only for tests (built by `build.rs`, never embedded).
#[cfg(test)]
pub(crate) mod test_plugins {
    include!(concat!(env!("OUT_DIR"), "/test_plugins.rs"));
}
