//! scim-edge: a SCIM 2.0 edge gateway for Envoy, between Microsoft Entra ID and Omni.
//!
//! The crate is two layers. The pure core — configuration, authentication, routing, the request
//! flow and SCIM errors — knows nothing of proxy-wasm; it is tested natively and, compiled to
//! `wasm32-unknown-unknown`, under Node. The adapter in `proxy` (built only into the filter Envoy
//! loads, the same target outside tests) translates host callbacks into calls on the core.

// A panic inside the VM takes down every request on the listener: nothing outside tests may panic.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::unreachable)
)]

pub mod admission;
pub mod auth;
pub mod base64url;
pub mod config;
pub mod discovery;
#[cfg(not(target_arch = "wasm32"))]
pub mod dry_run;
pub mod entra;
pub mod environ;
pub mod exchange;
#[cfg(test)]
mod fixtures;
pub mod http;
pub mod jwt;
pub mod mapping;
pub mod metrics;
pub mod oauth;
pub mod omni;
pub mod ratelimit;
pub mod retry_after;
pub mod route;
pub mod scim;
pub mod scim_error;
pub mod text;
pub mod upstream;

#[cfg(all(target_arch = "wasm32", target_os = "unknown", not(test)))]
pub mod proxy;
