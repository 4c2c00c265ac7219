//! The sandbox a plugin call runs in: an empty WASI context (no files, network,
//! environment or clock), a memory cap, and the `host` capabilities.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::switchyard::plugin::{host, types};
use super::oauth::{Grant, TokenCache};
use crate::clock::SharedClock;

/// What a plugin may write to stderr/stdout per call before the rest is dropped.
const OUTPUT_CAP: usize = 16 * 1024;

/// The data of one call's store.
pub struct CallState {
    pub plugin: String,
    pub tenant: String,
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
    clock: SharedClock,
    tokens: Arc<TokenCache>,
    fresh_tokens: bool,
    pub output: MemoryOutputPipe,
}

impl CallState {
    pub fn new(
        plugin: &str,
        tenant: &str,
        memory_bytes: usize,
        clock: SharedClock,
        tokens: Arc<TokenCache>,
        fresh_tokens: bool,
    ) -> Self {
        let output = MemoryOutputPipe::new(OUTPUT_CAP);
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output.clone())
            .build();
        Self {
            plugin: plugin.to_owned(),
            tenant: tenant.to_owned(),
            wasi,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .trap_on_grow_failure(true)
                .instances(64)
                .tables(64)
                .memories(16)
                .build(),
            clock,
            tokens,
            fresh_tokens,
            output,
        }
    }

    /// Logs what the plugin printed, if anything.
    pub fn flush_output(&self) {
        let printed = self.output.contents();
        if !printed.is_empty() {
            tracing::info!(plugin = %self.plugin, tenant = %self.tenant, output = %String::from_utf8_lossy(&printed), "plugin output");
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for CallState {}

impl host::Host for CallState {
    fn log(&mut self, level: types::Level, message: String) {
        let message: String = message.chars().take(4096).collect();
        let (plugin, tenant) = (&self.plugin, &self.tenant);
        match level {
            types::Level::Trace => tracing::trace!(%plugin, %tenant, "{message}"),
            types::Level::Debug => tracing::debug!(%plugin, %tenant, "{message}"),
            types::Level::Info => tracing::info!(%plugin, %tenant, "{message}"),
            types::Level::Warn => tracing::warn!(%plugin, %tenant, "{message}"),
            types::Level::Error => tracing::error!(%plugin, %tenant, "{message}"),
        }
    }

    fn now_ms(&mut self) -> u64 {
        self.clock.now_ms()
    }

    async fn oauth2_client_credentials(
        &mut self,
        grant: types::ClientCredentials,
    ) -> Result<types::AccessToken, String> {
        let grant = Grant {
            token_url: grant.token_url,
            client_id: grant.client_id,
            client_secret: grant.client_secret,
            scope: grant.scope,
            basic_auth: matches!(grant.auth, types::ClientAuth::Basic),
        };
        let token = self.tokens.token(&grant, self.fresh_tokens).await?;
        Ok(types::AccessToken {
            token: token.token,
            token_type: token.token_type,
            expires_in: token.expires_in,
        })
    }
}
