//! The WebAssembly component (`cargo build --target wasm32-wasip2`): the same core as the
//! native extension, with SQLite bundled (rusqlite) and LTX byte ranges fetched through
//! `wasi:http/outgoing-handler`.
//!
//! Exports (wit/ltxvfs.wit): the typed `ltxvfs:replica/replica` interface (open, query with
//! typed parameters and rows, status, time travel) and `wasi:http/incoming-handler` with a small
//! JSON API ([`api`]), so that `wasmtime serve` and other wasi-http runtimes run it unchanged.
//!
//! Storage: `s3://`/`oss://` ([`s3`], SigV4 signed), `http(s)://` ([`static_http`], a static
//! file server), `file://` ([`crate::file_storage`], a directory the host preopens). Polling happens at the
//! start of a read transaction once the poll interval has passed (the component has no thread).

pub mod api;
pub mod deadline;
pub mod functions;
pub mod host;
pub mod http;
pub mod isolation;
pub mod log;
pub mod s3;
pub mod sqlite;
pub mod static_http;

wit_bindgen::generate!({
    world: "component",
    path: "wit",
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock,
        "wasi:random/random@0.2.12": wasip2::random::random,
        "wasi:cli/environment@0.2.12": wasip2::cli::environment,
    },
});

use api::Component;
export!(Component);
