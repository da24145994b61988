//! `scim-edge check FILE`: the filter's own configuration compiler over every scim-edge filter in
//! a file, plus what the compiler accepts but an operator should hear about.

use std::process::ExitCode;

use serde_json::Value;

use scim_edge::auth::sha256_hex;
use scim_edge::config::{Config, ConfigError, OMNI_RATE_LIMIT};
use scim_edge::mapping::Profile;

use crate::cli::CheckArgs;
use crate::source::{load, EnvoyContext, Plugin};

/// Client tokens that are published (README, local stack) or shipped as placeholders: a digest
/// of one of them in `tokens` is legal and a risk.
const KNOWN_DIGESTS: &[(&str, &str)] = &[
    (
        "0cd48eed49739dfdd99efaef37d251aae5a80866e5954763c6597943fff5ce9b",
        "the development token local-dev-token (published in the README: anyone can use it)",
    ),
    (
        "f0e8a5b68dc8a33a53f5888140dd92d47aae784b15b0c7c59824a7937641c22a",
        "the placeholder of envoy/envoy.omni.yaml (no client can authenticate until it is replaced)",
    ),
];

/// The local stack's OAuth client secret, `local-dev-client-secret` (published, development only).
const LOCAL_DEV_CLIENT_SECRET_DIGEST: &str = "c7c210ef57ffe38ee9e660ad8e3ce0ae8ca00b154fb352375140b270ab8ae490";

/// Weak tokens worth a warning when their digest shows up.
const WEAK_TOKENS: &[&str] =
    &["local-dev-token", "changeme", "change-me", "secret", "password", "token", "test", "admin"];

/// A placeholder for environment variables under `--assume-env`: a valid token68, and long enough
/// for an access-token signing key (at least 32 bytes).
const ASSUMED_ENV_VALUE: &str = "assumed-by-scim-edge-check-for-any-variable";

#[derive(Default)]
struct Findings {
    errors: Vec<String>,
    warnings: Vec<String>,
}

pub fn run(args: &CheckArgs) -> Result<ExitCode, String> {
    let mut worst = 0u8;
    for file in &args.files {
        let code = match load(file) {
            Ok(plugins) => check_file(&file.display().to_string(), &plugins, args.assume_env),
            Err(message) => {
                eprintln!("scim-edge: error: {message}");
                2
            }
        };
        worst = worst.max(code);
    }
    Ok(ExitCode::from(worst))
}

/// Prints the findings of every filter in one file; 0 when all compile, 1 otherwise.
fn check_file(shown: &str, plugins: &[Plugin], assume_env: bool) -> u8 {
    let mut failed = 0usize;
    let mut warned = 0usize;
    for plugin in plugins {
        let findings = check_plugin(plugin, assume_env);
        println!("{shown}: scim-edge filter at {}", plugin.location);
        for error in &findings.errors {
            println!("  error: {error}");
        }
        for warning in &findings.warnings {
            println!("  warning: {warning}");
        }
        if findings.errors.is_empty() {
            println!("  ok: the filter accepts this configuration");
        } else {
            failed += 1;
        }
        warned += findings.warnings.len();
    }
    println!("{shown}: {} scim-edge filter(s), {failed} with errors, {warned} warning(s)", plugins.len());
    u8::from(failed > 0)
}

fn check_plugin(plugin: &Plugin, assume_env: bool) -> Findings {
    let mut findings = Findings::default();
    let text = match &plugin.json {
        Ok(text) => text,
        Err(problem) => {
            findings.errors.push(problem.clone());
            return findings;
        }
    };
    let process = |name: &str| std::env::var(name).ok();
    let assumed = |_: &str| Some(ASSUMED_ENV_VALUE.to_string());
    let lookup = |name: &str| -> Option<String> {
        let outside: &dyn Fn(&str) -> Option<String> = if assume_env { &assumed } else { &process };
        match &plugin.envoy {
            Some(envoy) => envoy.lookup(name, outside),
            None => outside(name),
        }
    };
    let document: Option<Value> = serde_json::from_str(text).ok();
    match Config::from_json(text.as_bytes(), &lookup) {
        Ok(config) => warn_about(&config, document.as_ref(), &mut findings),
        Err(error) => findings.errors.push(describe_error(&error, document.as_ref(), plugin.envoy.as_ref())),
    }
    if let (Some(envoy), Some(document)) = (&plugin.envoy, &document) {
        check_envoy(envoy, document, &mut findings);
    }
    findings
}

/// The error as the filter logs it (`invalid configuration: field: reason`), with what to do
/// when the cause is outside the file: an environment variable this shell does not have.
fn describe_error(error: &ConfigError, document: Option<&Value>, envoy: Option<&EnvoyContext>) -> String {
    let mut line = format!("invalid configuration: {error}");
    if error.field == "upstream.bearer_token_env" && error.reason.contains("is not set") {
        let name = document.and_then(|d| d.pointer("/upstream/bearer_token_env")).and_then(Value::as_str).unwrap_or("");
        let listed = envoy.map(|e| e.host_env_keys.iter().any(|k| k == name));
        line.push_str(&match listed {
            Some(false) => format!(
                "\n    {name} is not in vm_config.environment_variables.host_env_keys of this filter: the VM will not see it even when Envoy has it"
            ),
            _ => format!(
                "\n    {name} is not set in this shell: export it (the value is checked, never printed) or run with --assume-env where the secret is not available"
            ),
        });
    }
    line
}

fn warn_about(config: &Config, document: Option<&Value>, findings: &mut Findings) {
    let Some(document) = document else { return };
    let tokens = document.get("tokens").and_then(Value::as_array).into_iter().flatten();
    for (index, token) in tokens.enumerate() {
        let digest = token.get("sha256").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
        if let Some((_, what)) = KNOWN_DIGESTS.iter().find(|(d, _)| *d == digest) {
            findings.warnings.push(format!(
                "tokens[{index}].sha256: the digest of {what}; make a real one with `scim-edge token new --name NAME`"
            ));
        } else if let Some(weak) = WEAK_TOKENS.iter().find(|t| sha256_hex(t.as_bytes()) == digest) {
            findings.warnings.push(format!(
                "tokens[{index}].sha256: the digest of the guessable token '{weak}'; make a real one with `scim-edge token new --name NAME`"
            ));
        }
    }
    let clients = document.pointer("/oauth/clients").and_then(Value::as_array).into_iter().flatten();
    for (index, client) in clients.enumerate() {
        let digest = client.get("secret_sha256").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
        if digest == LOCAL_DEV_CLIENT_SECRET_DIGEST {
            findings.warnings.push(format!(
                "oauth.clients[{index}].secret_sha256: the digest of the development client secret local-dev-client-secret (published: anyone can use it); make a real client with `scim-edge client new --name NAME`"
            ));
        }
    }
    let omni = config.mapping.users.profile == Profile::Omni;
    let omni_host = config.upstream.authority.ends_with(".omniapp.co");
    match config.rate_limit {
        Some(limit) if (omni || omni_host) && limit.requests_per_minute > OMNI_RATE_LIMIT.requests_per_minute => {
            findings.warnings.push(format!(
                "rate_limit.requests_per_minute: {} per minute is above Omni's published {} per minute per API key: Omni answers the rest 429 (fine for an upstream that is not Omni)",
                limit.requests_per_minute, OMNI_RATE_LIMIT.requests_per_minute
            ));
        }
        Some(limit) if (omni || omni_host) && limit.burst > OMNI_RATE_LIMIT.burst => {
            findings.warnings.push(format!(
                "rate_limit.burst: {} is above Omni's {} requests per minute per API key",
                limit.burst, OMNI_RATE_LIMIT.burst
            ));
        }
        None if omni || omni_host => findings.warnings.push(
            "rate_limit: off for an Omni upstream, whose limit is 60 requests per minute per API key: Entra's bursts reach Omni and come back 429"
                .into(),
        ),
        _ => {}
    }
    if document.pointer("/upstream/bearer_token").is_some_and(|v| !v.is_null()) {
        findings.warnings.push(
            "upstream.bearer_token: the upstream's API key is in the configuration file; prefer upstream.bearer_token_env (listed in vm_config.environment_variables.host_env_keys)"
                .into(),
        );
    }
}

fn check_envoy(envoy: &EnvoyContext, document: &Value, findings: &mut Findings) {
    if let (Some(clusters), Some(cluster)) =
        (&envoy.clusters, document.pointer("/upstream/cluster").and_then(Value::as_str))
    {
        if !clusters.iter().any(|c| c == cluster) {
            findings.errors.push(format!(
                "upstream.cluster: no cluster named '{cluster}' in static_resources.clusters (every callout would fail: the filter answers 502); define it or correct the name"
            ));
        }
    }
    if envoy.buffer_after == Some(false) {
        findings.warnings.push(
            "http_filters: no envoy.filters.http.buffer after the scim-edge filter: the router starts before the filter has read a request body (put the buffer filter right after it, max_request_bytes a little above max_body_bytes)"
                .into(),
        );
    }
    if envoy.failure_policy.as_deref() != Some("FAIL_RELOAD") {
        findings.warnings.push(
            "failure_policy: not FAIL_RELOAD: if the VM ever dies, every later request on the listener gets an empty 503 until Envoy restarts"
                .into(),
        );
    }
}
