//! The plugin configuration: JSON in the filter's `StringValue`, read once, checked field by field
//! and compiled into the structures the request path uses.
//!
//! Every error names the field (`upstream.timeout_ms`) and the reason, and never the value: a
//! misplaced secret must not end up in Envoy's log through an error message.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::auth::{is_token68, TokenEntry, TokenSet};
use crate::entra::EntraJwt;
use crate::mapping::{Entry, Mapping, Policy, Profile, SystemAttributes, PRIVILEGED};
use crate::oauth::OAuth;
use crate::ratelimit::{Pacing, RateLimit};
use crate::route::ResourceType;
use crate::scim::value::parse_json;
use crate::upstream::{PublicBase, Upstream};

pub const CONFIG_VERSION: u64 = 1;
pub const DEFAULT_SCIM_PREFIX: &str = "/api/scim/v2";
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 10_000;

/// The compiled configuration, shared by every request of a VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The path the gateway owns, without a trailing slash: `/api/scim/v2`.
    pub scim_prefix: String,
    /// Largest request body accepted; larger ones are answered 413.
    pub max_body_bytes: usize,
    pub tokens: TokenSet,
    pub upstream: Upstream,
    /// Which attributes may reach the upstream.
    pub mapping: Mapping,
    /// The upstream's request budget, or `None` for no limit at the edge.
    pub rate_limit: Option<RateLimit>,
    /// OAuth 2.0 client credentials at the edge (src/oauth.rs), when configured.
    pub oauth: Option<OAuth>,
    /// Entra's own JWT, verified by `jwt_authn` (src/entra.rs), when configured.
    pub entra_jwt: Option<EntraJwt>,
    /// The SCIM base URL clients are given (`public_base_url`): every URL the edge hands out is
    /// built on it. Without one the edge hands out no URLs.
    pub public_base: PublicBase,
}

/// A configuration error: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn error(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), reason: reason.into() }
}

/// Looks up an environment variable of the VM (for `upstream.bearer_token_env`).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// For configurations that read nothing from the environment.
pub fn no_env(_: &str) -> Option<String> {
    None
}

impl Config {
    /// Parses and compiles the plugin configuration. `env` resolves `upstream.bearer_token_env`.
    pub fn from_json(bytes: &[u8], env: EnvLookup) -> Result<Config, ConfigError> {
        // serde_json's syntax errors give a line and column, never the text around them.
        let document =
            parse_json(bytes, false).map_err(|e| error("(configuration)", format!("not valid JSON ({e})")))?;
        let root = Fields::of("", &document)?;
        root.deny_unknown(&[
            "version",
            "scim_prefix",
            "max_body_bytes",
            "tokens",
            "upstream",
            "mapping",
            "rate_limit",
            "oauth",
            "entra_jwt",
            "public_base_url",
        ])?;

        match root.integer("version")? {
            Some(CONFIG_VERSION) => {}
            Some(_) => {
                return Err(error("version", format!("unsupported; this filter reads version {CONFIG_VERSION}")))
            }
            None => return Err(error("version", format!("required; set it to {CONFIG_VERSION}"))),
        }
        let scim_prefix = match root.string("scim_prefix")? {
            Some(prefix) => check_base_path(prefix, false).map_err(|r| error("scim_prefix", r))?,
            None => DEFAULT_SCIM_PREFIX.to_string(),
        };
        let max_body_bytes =
            root.integer_in("max_body_bytes", 1024..=16 * 1024 * 1024)?.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        let other_methods = root.get("oauth").is_some() || root.get("entra_jwt").is_some();
        Ok(Config {
            max_body_bytes: usize::try_from(max_body_bytes).map_err(|_| error("max_body_bytes", "too large"))?,
            tokens: tokens(&root, other_methods)?,
            upstream: upstream(&root, env)?,
            rate_limit: rate_limit(&root, profile_of(&root))?,
            mapping: mapping(&root)?,
            oauth: OAuth::from_config(&root, &scim_prefix, env)?,
            entra_jwt: EntraJwt::from_config(&root)?,
            public_base: match root.string("public_base_url")? {
                Some(url) => PublicBase::parse(url).map_err(|r| error("public_base_url", r))?,
                None => PublicBase::default(),
            },
            scim_prefix,
        })
    }
}

/// The static tokens; optional when `oauth` or `entra_jwt` admits clients.
fn tokens(root: &Fields, other_methods: bool) -> Result<TokenSet, ConfigError> {
    let items = match root.array("tokens")? {
        Some(items) => items,
        None if other_methods => return Ok(TokenSet::new(Vec::new())),
        None => return Err(error("tokens", "required: at least one {name, sha256} (or oauth, or entra_jwt)")),
    };
    if items.is_empty() {
        return Err(error("tokens", "empty: no client could ever authenticate"));
    }
    let mut entries: Vec<TokenEntry> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let fields = Fields::of(&format!("tokens[{index}]"), item)?;
        fields.deny_unknown(&["name", "sha256"])?;
        let name = fields.required_string("name")?;
        if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            return Err(error(
                fields.path("name"),
                "1 to 64 characters from A-Z a-z 0-9 - _ (it becomes part of metric names)",
            ));
        }
        let sha256 = decode_sha256(fields.required_string("sha256")?).ok_or_else(|| {
            fields.error("sha256", "expected the SHA-256 digest of the token as 64 hexadecimal characters")
        })?;
        if sha256 == EMPTY_SHA256 {
            return Err(fields.error("sha256", "is the digest of the empty string"));
        }
        if entries.iter().any(|e| e.name == name) {
            return Err(fields.error("name", "duplicate token name"));
        }
        if entries.iter().any(|e| e.sha256 == sha256) {
            return Err(fields.error("sha256", "duplicate digest (the same token twice)"));
        }
        entries.push(TokenEntry { name: name.to_string(), sha256 });
    }
    Ok(TokenSet::new(entries))
}

fn upstream(root: &Fields, env: EnvLookup) -> Result<Upstream, ConfigError> {
    let value = root.get("upstream").ok_or_else(|| error("upstream", "required"))?;
    let fields = Fields::of("upstream", value)?;
    fields.deny_unknown(&[
        "cluster",
        "authority",
        "base_path",
        "timeout_ms",
        "bearer_token",
        "bearer_token_env",
        "max_response_bytes",
        "max_retry_after_s",
    ])?;
    let cluster = fields.required_string("cluster")?;
    if cluster.is_empty() {
        return Err(fields.error("cluster", "empty; name an Envoy cluster of the bootstrap"));
    }
    let authority = fields.required_string("authority")?;
    if authority.is_empty() || !authority.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b)) {
        return Err(fields.error("authority", "expected host or host:port"));
    }
    let base_path = check_base_path(fields.required_string("base_path")?, true)
        .map_err(|reason| fields.error("base_path", reason))?;
    let timeout_ms = fields.integer_in("timeout_ms", 1..=300_000)?.unwrap_or(DEFAULT_UPSTREAM_TIMEOUT_MS);
    let bearer_token = upstream_credential(&fields, env)?;
    let mut upstream = Upstream::new(cluster, authority, &base_path, Duration::from_millis(timeout_ms), &bearer_token);
    if let Some(max) = fields.integer_in("max_response_bytes", 1024..=64 * 1024 * 1024)? {
        upstream.max_response_bytes =
            usize::try_from(max).map_err(|_| fields.error("max_response_bytes", "too large"))?;
    }
    if let Some(max) = fields.integer_in("max_retry_after_s", 1..=86_400)? {
        upstream.max_retry_after_s = max;
    }
    Ok(upstream)
}

/// The upstream's bearer credential: inline (`bearer_token`) or, better, from an environment
/// variable of the VM (`bearer_token_env`, listed in Envoy's
/// `vm_config.environment_variables.host_env_keys`), never both.
fn upstream_credential(fields: &Fields, env: EnvLookup) -> Result<String, ConfigError> {
    let (field, token) = match (fields.string("bearer_token")?, fields.string("bearer_token_env")?) {
        (Some(_), Some(_)) => {
            return Err(fields.error("bearer_token", "set either bearer_token or bearer_token_env, not both"))
        }
        (None, None) => return Err(fields.error("bearer_token_env", "required (or bearer_token)")),
        (Some(token), None) => ("bearer_token", token.to_string()),
        (None, Some(name)) => match env(name) {
            Some(token) => ("bearer_token_env", token),
            None => {
                return Err(error(
                    fields.path("bearer_token_env"),
                    format!("environment variable {name} is not set in the VM (list it in vm_config.environment_variables.host_env_keys)"),
                ))
            }
        },
    };
    if !is_token68(token.trim().as_bytes()) {
        return Err(fields.error(field, "expected a non-empty bearer token (RFC 6750 token68 characters)"));
    }
    Ok(token.trim().to_string())
}

/// The mapping profile named in the configuration (for defaults that depend on it).
fn profile_of(root: &Fields) -> Profile {
    let named = root.get("mapping").and_then(|m| m.get("profile")).and_then(Value::as_str);
    named.and_then(Profile::parse).unwrap_or(Profile::Omni)
}

pub use crate::omni::OMNI_RATE_LIMIT;
pub(crate) use crate::text::comma_separated;

fn rate_limit(root: &Fields, profile: Profile) -> Result<Option<RateLimit>, ConfigError> {
    let value = match root.get("rate_limit") {
        None => return Ok(profile.contract().default_rate_limit()),
        Some(Value::String(off)) if off == "off" => return Ok(None),
        Some(value) => value,
    };
    let fields = Fields::of("rate_limit", value)?;
    fields.deny_unknown(&["requests_per_minute", "burst", "max_wait_ms", "max_waiting"])?;
    let per_minute = fields
        .integer_in("requests_per_minute", 1..=1_000_000)?
        .ok_or_else(|| error("rate_limit.requests_per_minute", "required (or set rate_limit to \"off\")"))?;
    let burst = fields.integer_in("burst", 1..=1_000_000)?.unwrap_or(per_minute);
    let narrow = |n: u64, field: &str| u32::try_from(n).map_err(|_| error(field, "too large"));
    // Entra gives up on a request after 60 s: a wait must leave the upstream time to answer.
    let max_wait_ms = fields.integer_in("max_wait_ms", 0..=55_000)?.unwrap_or(u64::from(Pacing::DEFAULT.max_wait_ms));
    let max_waiting = fields.integer_in("max_waiting", 1..=10_000)?.unwrap_or(u64::from(Pacing::DEFAULT.max_waiting));
    Ok(Some(RateLimit {
        requests_per_minute: narrow(per_minute, "rate_limit.requests_per_minute")?,
        burst: narrow(burst, "rate_limit.burst")?,
        pacing: Pacing {
            max_wait_ms: narrow(max_wait_ms, "rate_limit.max_wait_ms")?,
            max_waiting: narrow(max_waiting, "rate_limit.max_waiting")?,
        },
    }))
}

fn mapping(root: &Fields) -> Result<Mapping, ConfigError> {
    let Some(value) = root.get("mapping") else {
        return Ok(Mapping::omni_default());
    };
    let fields = Fields::of("mapping", value)?;
    fields.deny_unknown(&["profile", "users", "groups", "allow_privileged", "omni_system_attributes"])?;
    let profile = match fields.string("profile")? {
        None => Profile::Omni,
        Some(name) => Profile::parse(name).ok_or_else(|| fields.error("profile", "expected \"omni\" or \"rfc\""))?,
    };
    let system = match fields.string("omni_system_attributes")? {
        None | Some("reject") => SystemAttributes::Reject,
        Some("strip") => SystemAttributes::Strip,
        Some(_) => return Err(fields.error("omni_system_attributes", "expected \"reject\" or \"strip\"")),
    };
    let privileged = string_list(&fields, "allow_privileged")?;
    for (index, name) in privileged.iter().enumerate() {
        if !PRIVILEGED.contains(&name.as_str()) {
            return Err(error(
                format!("mapping.allow_privileged[{index}]"),
                format!("not a privilege-bearing attribute; those are {}", comma_separated(PRIVILEGED)),
            ));
        }
    }
    Ok(Mapping {
        users: policy(&fields, ResourceType::User, profile, system, &privileged)?,
        groups: policy(&fields, ResourceType::Group, profile, system, &privileged)?,
    })
}

fn policy(
    mapping: &Fields,
    resource_type: ResourceType,
    profile: Profile,
    system: SystemAttributes,
    privileged: &[String],
) -> Result<Policy, ConfigError> {
    let key = match resource_type {
        ResourceType::User => "users",
        ResourceType::Group => "groups",
    };
    let (add, remove) = match mapping.get(key) {
        None => (Vec::new(), Vec::new()),
        Some(value) => {
            let fields = Fields::of(&mapping.path(key), value)?;
            fields.deny_unknown(&["add", "remove"])?;
            (string_list(&fields, "add")?, string_list(&fields, "remove")?)
        }
    };
    Policy::compile(resource_type, profile, system, privileged, &add, &remove).map_err(|e| {
        let (list, index) = match e.entry {
            Entry::Add(index) => ("add", index),
            Entry::Remove(index) => ("remove", index),
        };
        error(format!("mapping.{key}.{list}[{index}]"), e.reason)
    })
}

fn string_list(fields: &Fields, key: &str) -> Result<Vec<String>, ConfigError> {
    let Some(items) = fields.array(key)? else {
        return Ok(Vec::new());
    };
    let mut strings = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Some(text) = item.as_str() else {
            return Err(error(format!("{}[{index}]", fields.path(key)), "expected a string"));
        };
        strings.push(text.to_string());
    }
    Ok(strings)
}

/// `/a/b` without a trailing slash, without query, fragment, dot segments or empty segments.
/// The upstream base path may be empty (the SCIM root is the server's root).
pub(crate) fn check_base_path(path: &str, may_be_empty: bool) -> Result<String, &'static str> {
    if path.is_empty() && may_be_empty {
        return Ok(String::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err("must start with '/'");
    };
    let segments_ok = rest.split('/').all(|s| {
        !s.is_empty() && s != "." && s != ".." && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    });
    if segments_ok {
        Ok(path.to_string())
    } else {
        Err("expected '/segment/segment' (letters, digits, - . _ ~), no trailing slash")
    }
}

pub(crate) const EMPTY_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41,
    0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

pub(crate) fn decode_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (out, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *out = u8::from_str_radix(text, 16).ok()?;
    }
    Some(digest)
}

/// One JSON object of the configuration, with the path that names it in errors.
pub(crate) struct Fields<'a> {
    prefix: String,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    pub(crate) fn of(prefix: &str, value: &'a Value) -> Result<Fields<'a>, ConfigError> {
        match value {
            Value::Object(map) => Ok(Fields { prefix: prefix.to_string(), map }),
            _ => Err(error(if prefix.is_empty() { "(configuration)" } else { prefix }, "expected a JSON object")),
        }
    }

    pub(crate) fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    /// An error about one field of this object.
    pub(crate) fn error(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        error(self.path(key), reason)
    }

    pub(crate) fn deny_unknown(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(key) => Err(self.error(key, format!("unknown field; known fields: {}", comma_separated(known)))),
            None => Ok(()),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        // `null` is as good as absent.
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.error(key, "expected a string")),
        }
    }

    pub(crate) fn required_string(&self, key: &str) -> Result<&'a str, ConfigError> {
        self.string(key)?.ok_or_else(|| self.error(key, "required"))
    }

    pub(crate) fn integer(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| self.error(key, "expected a non-negative integer")),
        }
    }

    pub(crate) fn integer_in(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, ConfigError> {
        match self.integer(key)? {
            Some(n) if !range.contains(&n) => {
                Err(self.error(key, format!("out of range {}..={}", range.start(), range.end())))
            }
            n => Ok(n),
        }
    }

    pub(crate) fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(self.error(key, "expected an array")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sha256_hex;
    use serde_json::json;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn valid() -> Value {
        json!({
            "version": 1,
            "tokens": [
                {"name": "entra-prod", "sha256": sha256_hex(b"client-secret")},
                {"name": "entra-next", "sha256": sha256_hex(b"next-secret").to_uppercase()},
            ],
            "upstream": {
                "cluster": "scim_upstream",
                "authority": "acme.omniapp.co",
                "base_path": "/api/scim/v2",
                "bearer_token": "omni-api-key",
            },
        })
    }

    fn compile(value: &Value) -> Result<Config, ConfigError> {
        Config::from_json(value.to_string().as_bytes(), &no_env)
    }

    fn field_error(value: &Value) -> String {
        compile(value).unwrap_err().field
    }

    #[test]
    fn a_minimal_config_compiles_with_defaults() {
        let config = compile(&valid()).unwrap();
        assert_eq!(config.scim_prefix, "/api/scim/v2");
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        assert_eq!(config.tokens.names().collect::<Vec<_>>(), ["entra-prod", "entra-next"]);
        assert_eq!(config.upstream.cluster, "scim_upstream");
        assert_eq!(config.upstream.timeout, Duration::from_secs(10));
        assert_eq!(config.tokens.authenticate(Some(b"Bearer next-secret")), Ok("entra-next"));
    }

    #[test]
    fn every_field_is_read() {
        let mut value = valid();
        value["scim_prefix"] = json!("/scim");
        value["max_body_bytes"] = json!(4096);
        value["upstream"]["timeout_ms"] = json!(250);
        value["upstream"]["base_path"] = json!("");
        let config = compile(&value).unwrap();
        assert_eq!(config.scim_prefix, "/scim");
        assert_eq!(config.max_body_bytes, 4096);
        assert_eq!(config.upstream.timeout, Duration::from_millis(250));
        assert_eq!(config.upstream.base_path, "");
    }

    type Mutation = Box<dyn Fn(&mut Value)>;

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(&str, Mutation)> = vec![
            ("version", Box::new(|v| v["version"] = json!(2))),
            (
                "version",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("version");
                }),
            ),
            ("colour", Box::new(|v| v["colour"] = json!("blue"))),
            ("scim_prefix", Box::new(|v| v["scim_prefix"] = json!("/api/scim/v2/"))),
            ("scim_prefix", Box::new(|v| v["scim_prefix"] = json!("api"))),
            ("scim_prefix", Box::new(|v| v["scim_prefix"] = json!("/a/../b"))),
            ("max_body_bytes", Box::new(|v| v["max_body_bytes"] = json!(10))),
            ("max_body_bytes", Box::new(|v| v["max_body_bytes"] = json!("1MB"))),
            ("tokens", Box::new(|v| v["tokens"] = json!([]))),
            ("tokens", Box::new(|v| v["tokens"] = json!("x"))),
            ("tokens[0].sha256", Box::new(|v| v["tokens"][0]["sha256"] = json!("client-secret"))),
            ("tokens[0].sha256", Box::new(|v| v["tokens"][0]["sha256"] = json!(sha256_hex(b"")))),
            ("tokens[1].name", Box::new(|v| v["tokens"][1]["name"] = json!("entra-prod"))),
            ("tokens[1].sha256", Box::new(|v| v["tokens"][1]["sha256"] = json!(sha256_hex(b"client-secret")))),
            ("tokens[0].name", Box::new(|v| v["tokens"][0]["name"] = json!("has space"))),
            ("tokens[0].token", Box::new(|v| v["tokens"][0]["token"] = json!("plain"))),
            ("tokens[1]", Box::new(|v| v["tokens"][1] = json!("x"))),
            (
                "upstream",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("upstream");
                }),
            ),
            ("upstream.cluster", Box::new(|v| v["upstream"]["cluster"] = json!(""))),
            ("upstream.authority", Box::new(|v| v["upstream"]["authority"] = json!("a/b"))),
            ("upstream.base_path", Box::new(|v| v["upstream"]["base_path"] = json!("v2"))),
            ("upstream.timeout_ms", Box::new(|v| v["upstream"]["timeout_ms"] = json!(0))),
            ("upstream.bearer_token", Box::new(|v| v["upstream"]["bearer_token"] = json!("two words"))),
            (
                "upstream.bearer_token_env",
                Box::new(|v| {
                    v["upstream"].as_object_mut().unwrap().remove("bearer_token");
                }),
            ),
        ];
        for (field, mutate) in cases {
            let mut value = valid();
            mutate(&mut value);
            assert_eq!(field_error(&value), field);
        }
    }

    #[test]
    fn the_upstream_credential_can_come_from_the_environment() {
        let mut value = valid();
        value["upstream"].as_object_mut().unwrap().remove("bearer_token");
        value["upstream"]["bearer_token_env"] = json!("OMNI_API_KEY");
        let env = |name: &str| (name == "OMNI_API_KEY").then(|| "key-from-env\n".to_string());
        let config = Config::from_json(value.to_string().as_bytes(), &env).unwrap();
        let call = config.upstream.call(&crate::route::resolve("GET", "Users", "").unwrap(), vec![], None);
        assert_eq!(call.header("authorization"), Some("Bearer key-from-env"));

        let unset = Config::from_json(value.to_string().as_bytes(), &no_env).unwrap_err();
        assert_eq!(unset.field, "upstream.bearer_token_env");
        assert!(unset.reason.contains("OMNI_API_KEY is not set"));

        let bad = |_: &str| Some("not a token".to_string());
        let shown = Config::from_json(value.to_string().as_bytes(), &bad).unwrap_err().to_string();
        assert_eq!(shown, "upstream.bearer_token_env: expected a non-empty bearer token (RFC 6750 token68 characters)");

        value["upstream"]["bearer_token"] = json!("inline");
        assert!(compile(&value).unwrap_err().reason.contains("not both"));
    }

    #[test]
    fn errors_never_show_values() {
        let mut value = valid();
        value["upstream"]["bearer_token"] = json!("two secret words");
        value["tokens"][0]["sha256"] = json!("plain-client-secret");
        let shown = compile(&value).unwrap_err().to_string();
        assert!(!shown.contains("secret"), "{shown}");
        let shown = Config::from_json(b"{\"version\": 1, \"tokens\": [\"hunter2\"", &no_env).unwrap_err().to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.starts_with("(configuration): not valid JSON"), "{shown}");
    }

    #[test]
    fn the_public_base_url_is_configured_or_absent() {
        assert_eq!(compile(&valid()).unwrap().public_base, PublicBase(None));
        let mut value = valid();
        value["public_base_url"] = json!("https://scim.example.com/api/scim/v2");
        assert_eq!(compile(&value).unwrap().public_base.0.as_deref(), Some("https://scim.example.com/api/scim/v2"));
        for bad in [json!("scim.example.com"), json!("https://scim.example.com/api/scim/v2/"), json!(7)] {
            value["public_base_url"] = bad;
            assert_eq!(field_error(&value), "public_base_url");
        }
    }

    #[test]
    fn debug_output_never_shows_the_upstream_credential() {
        let shown = format!("{:?}", compile(&valid()).unwrap());
        assert!(!shown.contains("omni-api-key"), "{shown}");
    }
}
