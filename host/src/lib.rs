//! Switchyard: a self-hosted, WebAssembly-extensible event router.

#![forbid(unsafe_code)]

pub mod clock;
pub mod plugins;
