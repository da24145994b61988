//! The `scim-edge` command line, run as built: what an operator types and what it prints.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use scim_edge::config::{no_env, Config};
use serde_json::{json, Value};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const ENV: &str = "SCIM_EDGE_UPSTREAM_TOKEN";

/// Every Envoy configuration the project ships: envoy/*.yaml.
fn shipped() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("envoy"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".yaml"))
        .map(|name| format!("envoy/{name}"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    files
}

fn scim_edge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scim-edge")).args(args).current_dir(ROOT).env_remove(ENV).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn scratch(name: &str, contents: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{name}", NEXT.fetch_add(1, Ordering::SeqCst)));
    std::fs::write(&path, contents).unwrap();
    path
}

fn shipped_yaml() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("envoy/envoy.yaml")).unwrap()
}

/// The plugin configuration of envoy/envoy.yaml, with its credential inline and without its OAuth
/// section (whose signing key only comes from the environment): no environment needed.
fn shipped_plugin() -> Value {
    let yaml = shipped_yaml();
    let start = yaml.find("value: |").unwrap();
    let text = &yaml[start + "value: |".len()..];
    let end = text.find("- name: envoy.filters.http.buffer").unwrap();
    let mut plugin: Value = serde_json::from_str(&text[..end]).unwrap();
    plugin["upstream"].as_object_mut().unwrap().remove("bearer_token_env");
    plugin["upstream"]["bearer_token"] = json!("upstream-credential");
    plugin.as_object_mut().unwrap().remove("oauth");
    plugin
}

// --- token new ---

fn token_and_entry(out: &str) -> (String, Value) {
    let token = out.lines().find_map(|l| l.strip_prefix("token: ")).unwrap().to_string();
    let entry = serde_json::from_str(out.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    (token, entry)
}

#[test]
fn token_new_prints_a_token_the_filter_accepts_under_its_name() {
    let output = scim_edge(&["token", "new", "--name", "entra-2027"]);
    assert!(output.status.success(), "{output:?}");
    let (token, entry) = token_and_entry(&stdout(&output));
    assert_eq!(entry["name"], "entra-2027");
    let mut plugin = shipped_plugin();
    plugin["tokens"] = json!([entry]);
    let config = Config::from_json(plugin.to_string().as_bytes(), &no_env).unwrap();
    assert_eq!(config.tokens.authenticate(Some(format!("Bearer {token}").as_bytes())), Ok("entra-2027"));
    assert!(config.tokens.authenticate(Some(b"Bearer local-dev-token")).is_err());
}

#[test]
fn token_new_never_repeats_a_token() {
    let first = token_and_entry(&stdout(&scim_edge(&["token", "new", "--name", "a"]))).0;
    let second = token_and_entry(&stdout(&scim_edge(&["token", "new", "--name", "a"]))).0;
    assert_ne!(first, second);
    assert!(first.len() >= 43, "256 bits of randomness: {}", first.len());
}

#[test]
fn token_new_out_writes_a_private_file_and_prints_no_token() {
    use std::os::unix::fs::PermissionsExt;
    let path = scratch("token", "");
    std::fs::remove_file(&path).unwrap();
    let output = scim_edge(&["token", "new", "--name", "entra", "--out", path.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let shown = stdout(&output);
    assert!(!shown.contains(&token), "{shown}");
    let entry: Value = serde_json::from_str(shown.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(entry["sha256"], scim_edge::auth::sha256_hex(token.as_bytes()));

    let again = scim_edge(&["token", "new", "--name", "entra", "--out", path.to_str().unwrap()]);
    assert!(!again.status.success(), "an existing file is never overwritten");
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
}

#[test]
fn token_new_refuses_a_name_the_configuration_would_refuse() {
    let output = scim_edge(&["token", "new", "--name", "has space"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--name: 1 to 64 characters"));
}

// --- check ---

#[test]
fn check_passes_every_shipped_configuration() {
    for file in &shipped() {
        let output = scim_edge(&["check", "--assume-env", file]);
        assert!(output.status.success(), "{file}: {}", stdout(&output));
        let with_env = Command::new(env!("CARGO_BIN_EXE_scim-edge"))
            .args(["check", file])
            .current_dir(ROOT)
            .env(ENV, "k")
            .env("SCIM_EDGE_TOKEN_KEY", "a-signing-key-of-at-least-32-bytes")
            .output();
        assert!(with_env.unwrap().status.success(), "{file} with {ENV} set");
    }
}

#[test]
fn check_warns_about_the_development_token_and_a_budget_above_omnis() {
    let shown = stdout(&scim_edge(&["check", "--assume-env", "envoy/envoy.yaml"]));
    assert!(
        shown.contains("warning: tokens[0].sha256: the digest of the development token local-dev-token"),
        "{shown}"
    );
    assert!(shown.contains("warning: rate_limit.requests_per_minute: 6000 per minute is above Omni's"), "{shown}");
    assert!(
        shown.contains("warning: oauth.clients[0].secret_sha256: the digest of the development client secret"),
        "{shown}"
    );
    let omni = stdout(&scim_edge(&["check", "--assume-env", "envoy/envoy.omni.yaml"]));
    assert!(!omni.contains("rate_limit"), "envoy.omni.yaml keeps Omni's budget: {omni}");
    assert!(omni.contains("tokens[0].sha256: the digest of the placeholder"), "{omni}");
}

#[test]
fn check_says_which_environment_variable_is_missing() {
    let output = scim_edge(&["check", "envoy/envoy.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    let shown = stdout(&output);
    assert!(shown.contains("error: invalid configuration: upstream.bearer_token_env: environment variable SCIM_EDGE_UPSTREAM_TOKEN is not set"), "{shown}");
    assert!(shown.contains("--assume-env"), "{shown}");
}

type Breakage = (&'static str, Box<dyn Fn(&mut Value)>);

#[test]
fn check_names_the_field_of_each_broken_plugin_configuration() {
    let cases: Vec<Breakage> = vec![
        ("version", Box::new(|p| p["version"] = json!(2))),
        ("colour", Box::new(|p| p["colour"] = json!("blue"))),
        ("scim_prefix", Box::new(|p| p["scim_prefix"] = json!("/api/scim/v2/"))),
        ("max_body_bytes", Box::new(|p| p["max_body_bytes"] = json!(1))),
        ("tokens[0].sha256", Box::new(|p| p["tokens"][0]["sha256"] = json!("local-dev-token"))),
        ("tokens[0].name", Box::new(|p| p["tokens"][0]["name"] = json!("two words"))),
        ("upstream.timeout_ms", Box::new(|p| p["upstream"]["timeout_ms"] = json!(0))),
        ("upstream.base_path", Box::new(|p| p["upstream"]["base_path"] = json!("v2"))),
        ("mapping.profile", Box::new(|p| p["mapping"]["profile"] = json!("ldap"))),
        ("mapping.users.add[0]", Box::new(|p| p["mapping"]["users"]["add"] = json!(["favouriteColour"]))),
        ("mapping.users.remove[0]", Box::new(|p| p["mapping"]["users"]["remove"] = json!(["userName"]))),
        ("rate_limit.requests_per_minute", Box::new(|p| p["rate_limit"]["requests_per_minute"] = json!(0))),
    ];
    for (field, breakage) in cases {
        let mut plugin = shipped_plugin();
        breakage(&mut plugin);
        let path = scratch("plugin.json", &plugin.to_string());
        let output = scim_edge(&["check", path.to_str().unwrap()]);
        let shown = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "{field}: {shown}");
        assert!(shown.contains(&format!("error: invalid configuration: {field}: ")), "{field}: {shown}");
    }
    let path = scratch("broken.json", "{\"version\": 1, \"tokens\": [");
    let shown = stdout(&scim_edge(&["check", path.to_str().unwrap()]));
    assert!(shown.contains("error: invalid configuration: (configuration): not valid JSON"), "{shown}");
}

#[test]
fn check_names_what_is_wrong_around_the_filter_in_an_envoy_configuration() {
    let yaml = shipped_yaml();
    let cases: Vec<(&str, String)> = vec![
        (
            "upstream.cluster: no cluster named 'scim_upstream'",
            yaml.replace("- name: scim_upstream", "- name: elsewhere"),
        ),
        (
            "upstream.bearer_token_env",
            yaml.replace(
                "host_env_keys: [SCIM_EDGE_UPSTREAM_TOKEN, SCIM_EDGE_TOKEN_KEY]",
                "host_env_keys: [SCIM_EDGE_TOKEN_KEY]",
            ),
        ),
        (
            "configuration: a google.protobuf.Struct",
            yaml.replace(
                "type.googleapis.com/google.protobuf.StringValue",
                "type.googleapis.com/google.protobuf.Struct",
            ),
        ),
        ("upstream.timeout_ms", yaml.replace("\"timeout_ms\": 10000", "\"timeout_ms\": 0")),
    ];
    for (expected, broken) in cases {
        assert_ne!(broken, yaml, "{expected}: the breakage applies");
        let path = scratch("envoy.yaml", &broken);
        let output = scim_edge(&["check", "--assume-env", path.to_str().unwrap()]);
        let shown = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "{expected}: {shown}");
        assert!(
            shown.contains(&format!("error: {expected}"))
                || shown.contains(&format!("error: invalid configuration: {expected}")),
            "{expected}: {shown}"
        );
    }
    let no_buffer = yaml
        .replace("- name: envoy.filters.http.buffer", "- name: envoy.filters.http.cors")
        .replace("envoy.extensions.filters.http.buffer.v3.Buffer", "envoy.extensions.filters.http.cors.v3.Cors");
    let shown = stdout(&scim_edge(&["check", "--assume-env", scratch("envoy.yaml", &no_buffer).to_str().unwrap()]));
    assert!(
        shown.contains("warning: http_filters: no envoy.filters.http.buffer after the scim-edge filter"),
        "{shown}"
    );

    let without = yaml.replace("root_id: scim_edge", "root_id: other").replace("scim_edge.wasm", "other.wasm");
    let output = scim_edge(&["check", scratch("envoy.yaml", &without).to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("without a scim-edge wasm filter"));
}

#[test]
fn check_finds_the_filter_in_an_ecds_extension_config() {
    let plugin = shipped_plugin();
    let ecds = json!({
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": "scim_edge",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "root_id": "scim_edge",
                    "failure_policy": "FAIL_RELOAD",
                    "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": "scim_edge.wasm"}}},
                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": plugin.to_string()},
                },
            },
        }],
    });
    let path = scratch("ecds.yaml", &ecds.to_string());
    let output = scim_edge(&["check", path.to_str().unwrap()]);
    let shown = stdout(&output);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("scim-edge filter at resources[0]\n"), "{shown}");
}

// --- explain ---

fn explain_json(args: &[&str]) -> Value {
    let mut all = vec!["explain", "--json"];
    all.extend_from_slice(args);
    let output = scim_edge(&all);
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn explain_says_why_department_did_not_arrive_and_which_rule_to_change() {
    let body = scratch(
        "patch.json",
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
            {"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Finance"},
            {"op":"Replace","path":"displayName","value":"Ada"}]}"#,
    );
    let args =
        ["--config", "envoy/envoy.omni.yaml", "PATCH", "/api/scim/v2/Users/2819c223-7f76-453a-919d-413861904646"];
    let mut with_body = args.to_vec();
    with_body.extend(["--body", body.to_str().unwrap()]);
    let explained = explain_json(&with_body);
    assert_eq!(explained["route"], json!({"endpoint": "Users/{id}", "method": "PATCH"}));
    let upstream = &explained["upstream"];
    assert_eq!(upstream["path"], "/api/scim/v2/Users/2819c223-7f76-453a-919d-413861904646");
    assert_eq!(upstream["body"]["Operations"], json!([{"op": "replace", "path": "displayName", "value": "Ada"}]));
    let department = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
    assert_eq!(explained["stripped"][0]["attribute"], department);
    let reason = explained["stripped"][0]["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("add \"{department}\" to mapping.users.add")), "{reason}");
    assert_eq!(explained["normalisations"][0]["kind"], "op_case");

    let text = stdout(&scim_edge(&[&["explain"], &with_body[..]].concat()));
    assert!(
        text.contains(&format!(
            "  - {department}: not mapped: the omni profile forwards userName, active, displayName"
        )),
        "{text}"
    );
}

#[test]
fn explain_names_the_removal_rule_that_strips_an_attribute() {
    let mut plugin = shipped_plugin();
    plugin["mapping"] = json!({"profile": "rfc", "users": {"remove": ["emails", "name.formatted"]}});
    let config = scratch("plugin.json", &plugin.to_string());
    let create = format!("{ROOT}/tests/fixtures/entra/create-user.json");
    let explained =
        explain_json(&["--config", config.to_str().unwrap(), "POST", "/api/scim/v2/Users", "--body", &create]);
    let stripped: Vec<(String, String)> = explained["stripped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["attribute"].as_str().unwrap().to_string(), s["reason"].as_str().unwrap().to_string()))
        .collect();
    assert!(stripped.contains(&("emails".into(), "mapping.users.remove[0] unmaps it".into())), "{stripped:?}");
    assert!(stripped.contains(&("name.formatted".into(), "mapping.users.remove[1] unmaps it".into())), "{stripped:?}");
    assert!(explained["upstream"]["body"].get("emails").is_none());
    assert_eq!(explained["upstream"]["body"]["name"]["givenName"], "givenName");
}

#[test]
fn explain_shows_what_the_edge_answers_itself_and_what_the_client_receives() {
    let explained = explain_json(&["--config", "envoy/envoy.yaml", "GET", "/api/scim/v2/ServiceProviderConfig"]);
    assert_eq!(explained["answered_by_edge"], true);
    assert!(explained["upstream"].is_null());
    assert_eq!(explained["response"]["status"], 200);
    assert!(explained["edge_reason"].as_str().unwrap().starts_with("a discovery endpoint"));

    // Under the omni mapping `emails` never reaches Omni, so a filter on it can match nothing.
    let filter = r#"/api/scim/v2/Users?filter=emails.value eq "ada@example.com""#;
    let explained = explain_json(&["--config", "envoy/envoy.yaml", "GET", filter]);
    assert!(explained["upstream"].is_null());
    assert_eq!(explained["response"]["body"]["totalResults"], 0);
    assert!(explained["edge_reason"].as_str().unwrap().starts_with("the query can match nothing"));
    let explained = explain_json(&["--config", "envoy/envoy.yaml", "DELETE", "/api/scim/v2/Users"]);
    assert_eq!(explained["response"]["status"], 405);
    assert!(explained["edge_reason"].as_str().unwrap().starts_with("a refusal"));

    let answer = scratch(
        "answer.json",
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"ada@example.com","title":"CEO"}"#,
    );
    let explained = explain_json(&[
        "--config",
        "envoy/envoy.yaml",
        "GET",
        "/api/scim/v2/Users/1",
        "--upstream-status",
        "200",
        "--upstream-body",
        answer.to_str().unwrap(),
    ]);
    assert_eq!(explained["answered_by_edge"], false);
    assert_eq!(explained["response"]["status"], 200);
    assert_eq!(explained["response"]["body"]["userName"], "ada@example.com");
    assert!(explained["response"]["body"].get("title").is_none(), "the omni mapping strips answers as well");
}

#[test]
fn explain_never_shows_the_upstream_credential() {
    let shown = Command::new(env!("CARGO_BIN_EXE_scim-edge"))
        .args(["explain", "--json", "--config", "envoy/envoy.yaml", "GET", "/api/scim/v2/Users"])
        .current_dir(ROOT)
        .env(ENV, "very-secret-upstream-key")
        .output()
        .unwrap();
    let text = String::from_utf8(shown.stdout).unwrap();
    assert!(text.contains("authorization"), "{text}");
    assert!(!text.contains("very-secret-upstream-key"), "{text}");
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        &["--help"][..],
        &["token", "--help"],
        &["token", "new", "--help"],
        &["client", "new", "--help"],
        &["key", "new", "--help"],
        &["check", "--help"],
        &["explain", "--help"],
    ] {
        let output = scim_edge(args);
        assert!(output.status.success(), "{args:?}");
        assert!(stdout(&output).contains("Usage: scim-edge"), "{args:?}");
    }
    let output = scim_edge(&["explain", "GET"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--config <FILE>"));
}

#[test]
fn the_department_example_in_docs_cli_md_prints_what_the_docs_show() {
    let docs = std::fs::read_to_string(Path::new(ROOT).join("docs/cli.md")).unwrap();
    let start = docs.find("```\n$ echo '").unwrap() + "```\n$ ".len();
    let block = &docs[start..start + docs[start..].find("```").unwrap()];
    let (command, expected) = block.split_once(" --body -\n").unwrap();
    let command = format!("{} --body -", command.replace("\\\n", " "))
        .replace("scim-edge ", &format!("{} ", env!("CARGO_BIN_EXE_scim-edge")));
    let output = Command::new("sh").args(["-c", &command]).current_dir(ROOT).env_remove(ENV).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), expected);
}

#[test]
fn check_takes_several_files_and_exits_with_the_worst_verdict() {
    let shipped = shipped();
    let mut all = vec!["check", "--assume-env"];
    all.extend(shipped.iter().map(String::as_str));
    assert_eq!(scim_edge(&all).status.code(), Some(0));
    let mut plugin = shipped_plugin();
    plugin["version"] = json!(2);
    let broken = scratch("plugin.json", &plugin.to_string());
    all.push(broken.to_str().unwrap());
    let output = scim_edge(&all);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output).matches("0 with errors").count(), shipped.len(), "every file is reported");
    all.push("does-not-exist.yaml");
    let output = scim_edge(&all);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read does-not-exist.yaml"));
}

#[test]
fn token_new_json_is_one_object_and_leaves_the_token_out_with_out() {
    let shown: Value =
        serde_json::from_slice(&scim_edge(&["token", "new", "--name", "entra", "--json"]).stdout).unwrap();
    let token = shown["token"].as_str().unwrap();
    assert_eq!(shown["entry"], json!({"name": "entra", "sha256": scim_edge::auth::sha256_hex(token.as_bytes())}));

    let path = scratch("token", "");
    std::fs::remove_file(&path).unwrap();
    let output = scim_edge(&["token", "new", "--name", "entra", "--json", "--out", path.to_str().unwrap()]);
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(shown.get("token").is_none(), "{shown}");
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(shown["entry"]["sha256"], scim_edge::auth::sha256_hex(written.trim().as_bytes()));
}
