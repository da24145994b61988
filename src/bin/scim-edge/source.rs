//! Where a plugin configuration comes from: a plugin JSON file, or every scim-edge wasm filter of
//! an Envoy configuration (static listeners, ECDS `TypedExtensionConfig` resources, anything that
//! carries an `envoy.extensions.filters.http.wasm.v3.Wasm`).

use std::path::Path;

use serde_json::Value;

pub const WASM_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";
const STRUCT_TYPE: &str = "type.googleapis.com/google.protobuf.Struct";

/// One plugin configuration to compile.
pub struct Plugin {
    /// Where it is: `plugin configuration` for a JSON file, the YAML path of the filter otherwise.
    pub location: String,
    /// The text of the plugin's `StringValue`, or why the filter gives the plugin none Envoy can
    /// hand over as JSON.
    pub json: Result<String, String>,
    /// What the Envoy configuration around the filter says, when there is one.
    pub envoy: Option<EnvoyContext>,
}

/// The parts of the Envoy configuration the plugin depends on.
pub struct EnvoyContext {
    /// `vm_config.environment_variables.host_env_keys`: passed from Envoy's environment.
    pub host_env_keys: Vec<String>,
    /// `vm_config.environment_variables.key_values`: set in the VM by the configuration itself.
    pub key_values: Vec<(String, String)>,
    /// The static clusters, or `None` when clusters also come from CDS.
    pub clusters: Option<Vec<String>>,
    pub failure_policy: Option<String>,
    /// Whether an `envoy.filters.http.buffer` follows the wasm filter in its `http_filters`
    /// (`None` when the filter is not in an `http_filters` list, as in ECDS).
    pub buffer_after: Option<bool>,
}

impl EnvoyContext {
    /// The VM's view of an environment variable: `key_values` first, then `host_env_keys` taken
    /// from `process`; `None` when the VM would not see it.
    pub fn lookup(&self, name: &str, process: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        if let Some((_, value)) = self.key_values.iter().find(|(k, _)| k == name) {
            return Some(value.clone());
        }
        if self.host_env_keys.iter().any(|k| k == name) {
            return process(name);
        }
        None
    }
}

/// The plugin configurations in `path`; an error says why none can be read.
pub fn load(path: &Path) -> Result<Vec<Plugin>, String> {
    let bytes = if path.as_os_str() == "-" {
        let mut buffer = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buffer)
            .map_err(|e| format!("cannot read standard input ({e})"))?;
        buffer
    } else {
        std::fs::read(path).map_err(|e| format!("cannot read {} ({e})", path.display()))?
    };
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    let plugin = || vec![Plugin { location: "plugin configuration".into(), json: Ok(text.clone()), envoy: None }];
    // A plugin configuration is JSON; an Envoy configuration is YAML (or JSON) with resources.
    let document: Option<Value> = match serde_json::from_str::<Value>(&text) {
        Ok(value) => Some(value),
        Err(_) if text.trim_start().starts_with('{') => None,
        Err(_) => serde_yaml_ng::from_str::<Value>(&text).ok(),
    };
    let Some(document) = document.filter(is_envoy_config) else {
        // Not an Envoy configuration: the filter's compiler reports what is wrong with it.
        return Ok(plugin());
    };
    let clusters = static_clusters(&document);
    let mut found = Vec::new();
    walk(&document, String::new(), &mut |path, value, buffer_after| {
        if let Some(config) = scim_edge_filter(value) {
            found.push(plugin_of(path, config, clusters.clone(), buffer_after));
        }
    });
    if found.is_empty() {
        return Err(format!(
            "{}: an Envoy configuration without a scim-edge wasm filter (an {WASM_FILTER_TYPE} whose root_id is scim_edge or whose code is scim_edge.wasm)",
            path.display()
        ));
    }
    Ok(found)
}

fn is_envoy_config(document: &Value) -> bool {
    ["static_resources", "dynamic_resources", "admin", "resources", "node"].iter().any(|k| document.get(k).is_some())
}

/// Visits every object with its path (`static_resources.listeners[0]...`) and, for an entry of an
/// `http_filters` list, whether a buffer filter follows it.
fn walk(value: &Value, path: String, visit: &mut dyn FnMut(&str, &Value, Option<bool>)) {
    walk_at(value, path, None, visit);
}

fn walk_at(value: &Value, path: String, buffer_after: Option<bool>, visit: &mut dyn FnMut(&str, &Value, Option<bool>)) {
    match value {
        Value::Object(map) => {
            visit(&path, value, buffer_after);
            for (key, child) in map {
                let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                if key == "http_filters" {
                    if let Value::Array(filters) = child {
                        for (index, filter) in filters.iter().enumerate() {
                            let after = filters.iter().skip(index + 1).any(is_buffer_filter);
                            walk_at(filter, format!("{child_path}[{index}]"), Some(after), visit);
                        }
                        continue;
                    }
                }
                // `typed_config` of an http_filters entry keeps the entry's answer.
                let inherited = if key == "typed_config" || key == "config" { buffer_after } else { None };
                walk_at(child, child_path, inherited, visit);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                walk_at(item, format!("{path}[{index}]"), None, visit);
            }
        }
        _ => {}
    }
}

fn is_buffer_filter(filter: &Value) -> bool {
    filter.get("name").and_then(Value::as_str) == Some("envoy.filters.http.buffer")
        || type_of(filter.get("typed_config"))
            .is_some_and(|t| t.ends_with("envoy.extensions.filters.http.buffer.v3.Buffer"))
}

fn type_of(value: Option<&Value>) -> Option<&str> {
    value.and_then(|v| v.get("@type")).and_then(Value::as_str)
}

/// The `config` (PluginConfig) of a scim-edge wasm filter.
fn scim_edge_filter(value: &Value) -> Option<&Value> {
    if type_of(Some(value)) != Some(WASM_FILTER_TYPE) {
        return None;
    }
    let config = value.get("config")?;
    let root_id = config.get("root_id").and_then(Value::as_str);
    let code = config.pointer("/vm_config/code/local/filename").and_then(Value::as_str);
    let remote = config.pointer("/vm_config/code/remote/http_uri/uri").and_then(Value::as_str);
    let named = |s: Option<&str>| s.is_some_and(|s| s.contains("scim_edge") || s.contains("scim-edge"));
    (named(root_id) || named(code) || named(remote)).then_some(config)
}

fn static_clusters(document: &Value) -> Option<Vec<String>> {
    // Clusters from CDS, or a file of ECDS resources: which clusters exist is not in this file.
    if document.pointer("/dynamic_resources/cds_config").is_some() || document.get("static_resources").is_none() {
        return None;
    }
    let clusters = document.pointer("/static_resources/clusters").and_then(Value::as_array);
    Some(
        clusters
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
            .collect(),
    )
}

fn plugin_of(path: &str, config: &Value, clusters: Option<Vec<String>>, buffer_after: Option<bool>) -> Plugin {
    let configuration = config.get("configuration");
    let json = match (type_of(configuration), configuration.and_then(|c| c.get("value"))) {
        (None, _) if configuration.is_none() => Ok(String::new()),
        (Some(STRING_VALUE_TYPE), Some(Value::String(text))) => Ok(text.clone()),
        (Some(STRING_VALUE_TYPE), _) => Err("configuration.value: expected the plugin's JSON as a string".to_string()),
        (Some(STRUCT_TYPE), _) => Err(format!(
            "configuration: a google.protobuf.Struct reaches the plugin as binary protobuf, not JSON; use \"@type\": {STRING_VALUE_TYPE} with the JSON as its value"
        )),
        _ => Err(format!("configuration: expected \"@type\": {STRING_VALUE_TYPE} with the plugin's JSON as its value")),
    };
    let env = config.pointer("/vm_config/environment_variables");
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
    };
    let key_values = env
        .and_then(|e| e.get("key_values"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect();
    Plugin {
        location: path.strip_suffix(".typed_config").unwrap_or(path).to_string(),
        json,
        envoy: Some(EnvoyContext {
            host_env_keys: strings(env.and_then(|e| e.get("host_env_keys"))),
            key_values,
            clusters,
            failure_policy: config.get("failure_policy").and_then(Value::as_str).map(String::from),
            buffer_after,
        }),
    }
}
