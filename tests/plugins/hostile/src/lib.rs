//! A payload transform that misbehaves on demand, for the host's sandbox tests. The
//! setting `mode` picks what it does:
//!
//! | mode | behaviour |
//! |---|---|
//! | `echo` (default) | returns the payload as `text/plain`, after logging it |
//! | `loop` | spins forever |
//! | `alloc` | allocates until memory runs out |
//! | `trap` | executes `unreachable` |
//! | `panic` | panics (a message on stderr, then a trap) |
//! | `giant` | returns a 17 MiB body (over the host's 16 MiB cap) |
//! | `headers` | returns an error with a 1 MiB message |
//! | `now` | returns the host's clock as the body |
//! | `fail` | returns an error |

use switchyard_plugin_sdk::{
    Body, Error, Event, Level, PayloadTransform, PluginInfo, Setting, Settings, export, log, now_ms,
};

/// The plugin.
pub struct Hostile;

impl PayloadTransform for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "hostile",
            env!("CARGO_PKG_VERSION"),
            "Misbehaves on demand; for tests only.",
        )
        .setting(Setting::optional(
            "mode",
            "echo, loop, alloc, trap, panic, giant, headers, now or fail.",
        ))
    }

    fn transform(event: Event, settings: &Settings) -> Result<Body, Error> {
        match settings.get_or("mode", "echo") {
            "echo" => {
                log(
                    Level::Info,
                    &format!("echoing {} bytes", event.payload.len()),
                );
                Ok(Body::new("text/plain", event.payload))
            }
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 16 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => std::process::abort(),
            "panic" => panic!("the hostile plugin panics on purpose"),
            "giant" => Ok(Body::new("text/plain", vec![b'x'; 17 << 20])),
            "headers" => Err(Error::new("e".repeat(1 << 20))),
            "now" => Ok(Body::new("text/plain", now_ms().to_string().into_bytes())),
            "fail" => Err(Error::new("failing on purpose")),
            other => Err(Error::new(format_args!("unknown mode `{other}`"))),
        }
    }
}

export!(payload_transform: Hostile);
