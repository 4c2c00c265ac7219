//! Precompiled plugin artifacts for Switchyard's plugin host.
//!
//! Compiling a component takes tens of milliseconds per plugin; loading its precompiled
//! form takes a fraction of one. The host therefore caches `Component::serialize`
//! output on disk. Loading it back (`Component::deserialize`) is `unsafe`: wasmtime maps
//! the bytes as executable code and trusts them. This crate is the one place that does
//! it, and only for an artifact in this crate's envelope whose SHA-256 digest matches,
//! which catches truncated or corrupted files. The cache directory is trusted like the
//! rest of the data directory: whoever can write there can already change the host.

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, bail};

const MAGIC: &[u8; 8] = b"SYPRECMP";
const HEADER: usize = MAGIC.len() + 32;

/// Serializes `component` into an envelope that [`load`] accepts: a magic tag, the
/// SHA-256 digest of the artifact, and the artifact.
pub fn save(component: &Component) -> wasmtime::Result<Vec<u8>> {
    let artifact = component
        .serialize()
        .map_err(|e| e.context("serializing the compiled plugin"))?;
    let mut out = Vec::with_capacity(HEADER + artifact.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&Sha256::digest(&artifact));
    out.extend_from_slice(&artifact);
    Ok(out)
}

/// Loads an envelope written by [`save`] into `engine`. Fails (and never maps the bytes)
/// when the envelope is malformed or its digest does not match; fails when wasmtime finds
/// the artifact was compiled for another engine configuration or version.
pub fn load(engine: &Engine, envelope: &[u8]) -> wasmtime::Result<Component> {
    if envelope.len() < HEADER || &envelope[..MAGIC.len()] != MAGIC {
        bail!("not a precompiled plugin artifact");
    }
    let (digest, artifact) = envelope[MAGIC.len()..].split_at(32);
    if Sha256::digest(artifact).as_slice() != digest {
        bail!("precompiled plugin artifact is corrupt (digest mismatch)");
    }
    // SAFETY: the bytes are exactly what `save` wrote from `Component::serialize` (the
    // digest proves they are intact), and wasmtime checks that they were compiled for a
    // compatible engine before using them.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, artifact) }?;
    Ok(component)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: the preamble of an empty one.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn round_trips() {
        let engine = engine();
        let component = Component::new(&engine, EMPTY_COMPONENT).unwrap();
        let envelope = save(&component).unwrap();
        load(&engine, &envelope).unwrap();
    }

    #[test]
    fn refuses_corrupt_or_foreign_bytes() {
        let engine = engine();
        let component = Component::new(&engine, EMPTY_COMPONENT).unwrap();
        let mut envelope = save(&component).unwrap();
        let last = envelope.len() - 1;
        envelope[last] ^= 0xff;
        assert!(
            load(&engine, &envelope)
                .unwrap_err()
                .to_string()
                .contains("corrupt")
        );
        assert!(load(&engine, b"garbage").is_err());
        assert!(load(&engine, &[]).is_err());
    }
}
