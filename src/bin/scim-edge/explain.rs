//! `scim-edge explain`: one request through the filter's pipeline (`scim_edge::dry_run`), told
//! for a person, or as JSON.

use std::path::Path;
use std::process::ExitCode;

use serde_json::{json, Value};

use scim_edge::config::Config;
use scim_edge::dry_run::{self, DryRequest, Trace, UpstreamAnswer};
use scim_edge::mapping::{stripped_name, Policy, Profile, PRIVILEGED, UNLISTED_CUSTOM};
use scim_edge::route::ResourceType;
use scim_edge::scim::schema::{AttrRef, OMNI_USER_ATTRIBUTE_URN};
use scim_edge::text::comma_join;

use crate::cli::ExplainArgs;
use crate::source::load;

/// What the dry run uses for an upstream credential the shell does not hold: the credential
/// changes nothing the explanation shows (it is never shown).
const PLACEHOLDER_CREDENTIAL: &str = "scim-edge-explain-placeholder-for-any-variable";

pub fn run(args: &ExplainArgs) -> Result<ExitCode, String> {
    let plugins = load(&args.config)?;
    let plugin = plugins.first().ok_or("no plugin configuration found")?;
    if plugins.len() > 1 {
        eprintln!(
            "scim-edge: {} scim-edge filters in {}; explaining with the first, at {}",
            plugins.len(),
            args.config.display(),
            plugin.location
        );
    }
    let text = plugin.json.as_ref().map_err(|problem| format!("{}: {problem}", args.config.display()))?;
    let lookup = |name: &str| {
        let process = |n: &str| std::env::var(n).ok();
        let found = match &plugin.envoy {
            Some(envoy) => envoy.lookup(name, &process),
            None => process(name),
        };
        Some(found.unwrap_or_else(|| PLACEHOLDER_CREDENTIAL.to_string()))
    };
    let config = Config::from_json(text.as_bytes(), &lookup).map_err(|e| {
        format!(
            "{}: invalid configuration: {e} (run `scim-edge check {}` for details)",
            args.config.display(),
            args.config.display()
        )
    })?;
    let document: Value = serde_json::from_str(text).unwrap_or(Value::Null);

    let body = args.body.as_deref().map(read).transpose()?;
    let upstream = match args.upstream_status {
        Some(status) => Some(UpstreamAnswer {
            status,
            content_type: args.upstream_body.as_ref().map(|_| "application/scim+json".to_string()),
            body: args.upstream_body.as_deref().map(read).transpose()?.unwrap_or_default(),
        }),
        None => None,
    };
    let request = DryRequest {
        method: args.method.to_ascii_uppercase(),
        path: args.path.clone(),
        body,
        authority: args.authority.clone(),
    };
    let scim_prefix = config.scim_prefix.clone();
    let explainer = Explainer { config: config.clone(), document };
    let trace = dry_run::run(config, &request, upstream.as_ref());
    let explained = explainer.to_json(&request, &trace, &scim_prefix);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&explained).map_err(|e| e.to_string())?);
    } else {
        print!("{}", for_a_person(&explained));
    }
    Ok(ExitCode::SUCCESS)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    if path.as_os_str() == "-" {
        let mut buffer = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buffer)
            .map_err(|e| format!("cannot read standard input ({e})"))?;
        return Ok(buffer);
    }
    std::fs::read(path).map_err(|e| format!("cannot read {} ({e})", path.display()))
}

struct Explainer {
    config: Config,
    /// The plugin configuration as written, to point at the mapping rule responsible.
    document: Value,
}

impl Explainer {
    fn to_json(&self, request: &DryRequest, trace: &Trace, scim_prefix: &str) -> Value {
        let resource_type = trace.endpoint.and_then(|(label, _)| match label.split('/').next() {
            Some("Users") => Some(ResourceType::User),
            Some("Groups") => Some(ResourceType::Group),
            _ => None,
        });
        let route = match trace.endpoint {
            Some((endpoint, method)) => json!({"endpoint": endpoint, "method": method}),
            None if !request.path.starts_with(scim_prefix) => {
                json!({"outside": format!("not under scim_prefix {scim_prefix}: the filter lets it through to Envoy's routes")})
            }
            None => Value::Null,
        };
        let upstream = trace.upstream_call.as_ref().map(|call| {
            let path = call.header(":path").unwrap_or_default();
            let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
            let headers: Vec<Value> = call
                .headers
                .iter()
                .filter(|(n, _)| !n.starts_with(':'))
                .map(|(n, v)| {
                    json!([n, if n == "authorization" { "Bearer [the upstream credential, not shown]" } else { v }])
                })
                .collect();
            let body_text = call.body.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
            json!({
                "method": call.header(":method"),
                "path": path_only,
                "query": query,
                "cluster": call.cluster,
                "authority": call.header(":authority"),
                "headers": headers,
                "body": body_text.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok()),
                "body_text": body_text,
            })
        });
        let normalisations: Vec<Value> = trace
            .normalisations
            .iter()
            .map(|k| json!({"kind": k.as_str(), "description": dry_run::describe(*k)}))
            .collect();
        let stripped: Vec<Value> = trace
            .stripped
            .iter()
            .map(|counter| {
                let (attribute, reason) = self.why_stripped(counter, resource_type);
                json!({"attribute": attribute, "counter": format!("scim_edge.stripped.{counter}"), "reason": reason})
            })
            .collect();
        let response = trace.response.as_ref().map(|r| {
            let text = String::from_utf8_lossy(&r.body).into_owned();
            json!({
                "status": r.status,
                "headers": r.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
                "body": serde_json::from_str::<Value>(&text).ok(),
                "body_text": text,
            })
        });
        let edge_reason = trace.answered_by_edge().then(|| edge_reason(trace)).flatten();
        json!({
            "request": {"method": request.method, "path": request.path},
            "route": route,
            "edge_reason": edge_reason,
            "mapping_profile": resource_type.map(|rt| self.config.mapping.policy(rt).profile.as_str()),
            "answered_by_edge": trace.answered_by_edge(),
            "upstream": upstream,
            "normalisations": normalisations,
            "stripped": stripped,
            "response": response,
            "counters": trace.counters,
        })
    }

    /// The attribute behind a stripped counter name, and the mapping rule that strips it.
    fn why_stripped(&self, counter: &str, resource_type: Option<ResourceType>) -> (String, String) {
        let Some(resource_type) = resource_type else {
            return (counter.to_string(), "not mapped".to_string());
        };
        let key = match resource_type {
            ResourceType::User => "users",
            ResourceType::Group => "groups",
        };
        let policy = self.config.mapping.policy(resource_type);
        if counter == UNLISTED_CUSTOM {
            return (
                format!("{OMNI_USER_ATTRIBUTE_URN}:<name>"),
                format!("an Omni user attribute that mapping.{key}.add does not list (add \"{OMNI_USER_ATTRIBUTE_URN}:<name>\" there to forward it)"),
            );
        }
        let Some(attr) = attributes(policy).into_iter().find(|a| stripped_name(&a.canonical()) == counter) else {
            return (counter.to_string(), format!("not mapped in mapping.{key}"));
        };
        let canonical = attr.canonical();
        let removals = self.document.pointer(&format!("/mapping/{key}/remove")).and_then(Value::as_array);
        for (index, removed) in removals.into_iter().flatten().enumerate() {
            let Some(removed) = removed.as_str() else { continue };
            let Some(resolved) = scim_edge::scim::filter::resolve_attr(policy.schema, removed) else { continue };
            let removed = resolved.canonical();
            if canonical == removed || canonical.starts_with(&format!("{removed}.")) {
                return (canonical, format!("mapping.{key}.remove[{index}] unmaps it"));
            }
        }
        if scim_edge::omni::is_system_attribute(&attr) {
            return (canonical, "an Omni system attribute (read-only in Omni), stripped because mapping.omni_system_attributes is \"strip\"".into());
        }
        let reason = match policy.profile {
            Profile::Omni => {
                let base = comma_join(&mut Policy::base(Profile::Omni, resource_type).iter().map(String::as_str));
                let privileged = if PRIVILEGED.contains(&attr.attribute.name) && !attr.in_extension() {
                    format!(
                        " (privilege-bearing: it also needs \"{}\" in mapping.allow_privileged)",
                        attr.attribute.name
                    )
                } else {
                    String::new()
                };
                format!(
                    "not mapped: the omni profile forwards {base} and what mapping.{key}.add lists; add \"{canonical}\" to mapping.{key}.add to forward it{privileged}"
                )
            }
            Profile::Rfc => format!("not mapped in mapping.{key}"),
        };
        (canonical, reason)
    }
}

/// Why the edge answered a routed request itself, read from where the pipeline stopped.
fn edge_reason(trace: &Trace) -> Option<&'static str> {
    let status = trace.response.as_ref()?.status;
    if status >= 400 {
        return Some("a refusal; the SCIM error's detail says what is wrong");
    }
    let (endpoint, method) = trace.endpoint?;
    let collection = matches!(endpoint, "Users" | "Groups") && method == "GET" || endpoint.ends_with(".search");
    Some(match status {
        _ if ["ServiceProviderConfig", "Schemas", "ResourceTypes"].iter().any(|d| endpoint.starts_with(d)) => {
            "a discovery endpoint, where the edge describes itself (RFC 7644 §4)"
        }
        200 if collection => {
            "the query can match nothing the upstream stores, as it tests only attributes the mapping does not forward: an empty ListResponse"
        }
        204 if method == "PATCH" => {
            "the mapping stripped every operation, so nothing is left to send: 204, as RFC 7644 §3.5.2 allows"
        }
        _ => return None,
    })
}

/// Every attribute and sub-attribute of a policy's schemas, and the common `externalId`.
fn attributes(policy: &Policy) -> Vec<AttrRef> {
    let mut found = Vec::new();
    let schemas = std::iter::once(policy.schema.core).chain(policy.schema.extensions.iter().copied());
    for schema in schemas {
        for attribute in schema.attributes {
            found.push(AttrRef { schema: Some(schema), attribute, sub_attribute: None });
            for sub in attribute.sub_attributes {
                found.push(AttrRef { schema: Some(schema), attribute, sub_attribute: Some(sub) });
            }
        }
    }
    found.extend(scim_edge::scim::filter::resolve_attr(policy.schema, "externalId"));
    found
}

/// The explanation as text.
fn for_a_person(explained: &Value) -> String {
    let mut out = String::new();
    let line = |out: &mut String, text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    line(&mut out, format!("request: {} {}", s(&explained["request"]["method"]), s(&explained["request"]["path"])));
    let route = &explained["route"];
    if let Some(outside) = route.get("outside") {
        line(&mut out, format!("route: {}", s(outside)));
    } else if route.is_null() {
        line(&mut out, "route: none (refused before routing)".into());
    } else {
        let profile =
            explained["mapping_profile"].as_str().map(|p| format!(", mapping profile {p}")).unwrap_or_default();
        line(&mut out, format!("route: {} {}{profile}", s(&route["method"]), s(&route["endpoint"])));
    }
    if route.get("outside").is_some() {
        line(&mut out, "client receives: what Envoy's routes answer; the filter does not act".into());
        return out;
    }
    match &explained["upstream"] {
        Value::Null if explained["answered_by_edge"] == json!(true) => {
            let reason = explained["edge_reason"].as_str().map(|r| format!("\n  why: {r}")).unwrap_or_default();
            line(&mut out, format!("edge: answers itself; nothing is sent upstream{reason}"))
        }
        Value::Null => {}
        upstream => {
            line(&mut out, "edge: forwards to the upstream".into());
            line(&mut out, "upstream request:".into());
            line(
                &mut out,
                format!(
                    "  {} {}  (cluster {}, authority {})",
                    s(&upstream["method"]),
                    s(&upstream["path"]),
                    s(&upstream["cluster"]),
                    s(&upstream["authority"])
                ),
            );
            let query = s(&upstream["query"]);
            line(&mut out, format!("  query: {}", if query.is_empty() { "(none)".to_string() } else { query }));
            for header in upstream["headers"].as_array().into_iter().flatten() {
                line(&mut out, format!("  {}: {}", s(&header[0]), s(&header[1])));
            }
            match (&upstream["body"], &upstream["body_text"]) {
                (Value::Null, Value::Null) => line(&mut out, "  body: (none)".into()),
                (Value::Null, text) => line(&mut out, format!("  body: {}", s(text))),
                (body, _) => {
                    line(&mut out, "  body:".into());
                    for body_line in serde_json::to_string_pretty(body).unwrap_or_default().lines() {
                        line(&mut out, format!("    {body_line}"));
                    }
                }
            }
        }
    }
    let normalisations = explained["normalisations"].as_array().cloned().unwrap_or_default();
    if normalisations.is_empty() {
        line(&mut out, "normalisations: none".into());
    } else {
        line(&mut out, "normalisations:".into());
        for n in &normalisations {
            line(&mut out, format!("  - {}: {}", s(&n["kind"]), s(&n["description"])));
        }
    }
    let stripped = explained["stripped"].as_array().cloned().unwrap_or_default();
    if stripped.is_empty() {
        line(&mut out, "stripped: nothing".into());
    } else {
        line(&mut out, "stripped (not sent upstream):".into());
        for a in &stripped {
            line(&mut out, format!("  - {}: {}", s(&a["attribute"]), s(&a["reason"])));
        }
    }
    match &explained["response"] {
        Value::Null => line(
            &mut out,
            "client receives: the upstream's answer, relayed through the mapping (give --upstream-status and --upstream-body to see it)".into(),
        ),
        response => {
            line(&mut out, format!("client receives: {}", response["status"]));
            for header in response["headers"].as_array().into_iter().flatten() {
                line(&mut out, format!("  {}: {}", s(&header[0]), s(&header[1])));
            }
            match &response["body"] {
                Value::Null if s(&response["body_text"]).is_empty() => {}
                Value::Null => line(&mut out, format!("  {}", s(&response["body_text"]))),
                body => {
                    for body_line in serde_json::to_string_pretty(body).unwrap_or_default().lines() {
                        line(&mut out, format!("  {body_line}"));
                    }
                }
            }
        }
    }
    out
}
