//! Switchyard: a self-hosted, WebAssembly-extensible event router.

pub mod clock;
