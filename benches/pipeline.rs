//! The core pipeline natively, on the request mix of `make bench` and `make soak`
//! (tests/soak/entra_mix.lua): one [`Exchange`] per request driven through its three callbacks
//! (request headers, the whole body, the upstream's answer) against an in-memory host.
//!
//!     cargo bench --bench pipeline        # `make microbench`; `make bench` runs it too
//!
//! `make microbench` also builds it for wasm32-wasip1 and runs it under Node's V8 with TurboFan
//! only (bench/wasm-pipeline.mjs), the engine and tier Envoy runs the filter with: the same table,
//! so the cost of the pipeline itself inside V8 shows apart from Envoy's host calls.
//!
//! Criterion times each request kind (`pipeline/<kind>`). Then a table of its own: per kind and for
//! the weighted mix, ns/request, allocations and bytes allocated per request (a counting global
//! allocator), and the time and allocations of each callback, so it shows where they go.
//!
//! The host mirrors what the proxy adapter (src/proxy/mod.rs) does per call where that costs the
//! filter something: header and body reads hand back owned bytes (the host allocates them in the
//! VM), every counter is named with `Counter::name()` and looked up in a map, and the per-request
//! `info` log line is formatted (the adapter's logger formats it to a `String`). What Envoy does on
//! its side of a host call (copying, serialising header maps, the callout itself) is not in it:
//! that is the V8 + host-call cost `make bench` sees and this does not.
//!
//! The configuration is the shipped envoy/envoy.yaml's plugin configuration (omni profile), with
//! `rate_limit` raised as in `make bench`; the upstream answers are bench/standin's.

#[cfg(not(target_family = "wasm"))]
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[cfg(not(target_family = "wasm"))]
use criterion::Criterion;
use scim_edge::config::Config;
use scim_edge::exchange::{Exchange, Flow, Host, SharedWrite};
use scim_edge::http::Response;
use scim_edge::metrics::{Counter, Histogram};
use scim_edge::upstream::UpstreamCall;

// ------------------------------------------------------------------------------------------------
// Counting allocator

#[cfg(not(target_family = "wasm"))]
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

#[cfg(not(target_family = "wasm"))]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size as u64, Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[cfg(not(target_family = "wasm"))]
#[global_allocator]
static GLOBAL: Counting = Counting;

// Under wasm32-wasip1 (`make microbench`'s V8 run) the filter's allocator serves, as in
// src/proxy/mod.rs, and nothing is counted.
#[cfg(target_os = "wasi")]
#[global_allocator]
static GLOBAL: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

fn allocs() -> (u64, u64) {
    (ALLOCS.load(Relaxed), BYTES.load(Relaxed))
}

// ------------------------------------------------------------------------------------------------
// The log line, formatted as the SDK's logger does (into a `String`)

struct FormattingLogger;

impl log::Log for FormattingLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Info
    }
    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            black_box(format!("{}", record.args()));
            LOG_CALLS.fetch_add(1, Relaxed);
        }
    }
    fn flush(&self) {}
}

static LOGGER: FormattingLogger = FormattingLogger;
/// `proxy_log` calls: one per line logged.
static LOG_CALLS: AtomicU64 = AtomicU64::new(0);

// ------------------------------------------------------------------------------------------------
// The host

const UPSTREAM_TOKEN: &str = "local-upstream-token";
const CLIENT_TOKEN: &str = "local-dev-token";

/// The shipped plugin configuration (envoy/envoy.yaml), `rate_limit` raised as `make bench` does.
const PLUGIN: &str = r#"{
  "version": 1,
  "scim_prefix": "/api/scim/v2",
  "max_body_bytes": 1048576,
  "tokens": [
    { "name": "local-dev", "sha256": "0cd48eed49739dfdd99efaef37d251aae5a80866e5954763c6597943fff5ce9b" }
  ],
  "upstream": {
    "cluster": "scim_upstream",
    "authority": "scim-upstream",
    "base_path": "/v2",
    "timeout_ms": 10000,
    "bearer_token_env": "SCIM_EDGE_UPSTREAM_TOKEN"
  },
  "mapping": {
    "profile": "omni",
    "users": { "add": [], "remove": [] },
    "groups": { "add": [], "remove": [] },
    "omni_system_attributes": "reject"
  },
  "rate_limit": { "requests_per_minute": 1000000, "burst": 1000000 }
}"#;

fn config() -> Rc<Config> {
    let env = |name: &str| (name == "SCIM_EDGE_UPSTREAM_TOKEN").then(|| UPSTREAM_TOKEN.to_string());
    Rc::new(Config::from_json(PLUGIN.as_bytes(), &env).expect("the shipped plugin configuration"))
}

#[derive(Default)]
struct BenchHost {
    request_headers: Vec<(&'static str, Vec<u8>)>,
    request_body: Vec<u8>,
    upstream_headers: Vec<(&'static str, Vec<u8>)>,
    upstream_body: Vec<u8>,
    counters: HashMap<String, u64>,
    shared: HashMap<String, (Vec<u8>, u32)>,
    clock: Duration,
    status: u16,
    dispatched: usize,
    /// Host calls the proxy adapter would make for what the exchange asked (src/proxy/mod.rs):
    /// one per counter, clock read, shared-data access, body read, callout and answer, and one
    /// per header map however many of its headers are read.
    calls: Cell<u64>,
    request_headers_read: Cell<bool>,
    upstream_headers_read: Cell<bool>,
    /// The adapter's counter-name buffer.
    name: String,
}

impl BenchHost {
    fn call(&self) {
        self.calls.set(self.calls.get() + 1);
    }

    fn map_read(&self, read: &Cell<bool>) {
        if !read.replace(true) {
            self.call();
        }
    }

    /// A new stream: its header maps have not been read yet.
    fn new_stream(&mut self) {
        self.request_headers_read.set(false);
        self.upstream_headers_read.set(false);
    }
}

fn find(headers: &[(&'static str, Vec<u8>)], name: &str) -> Option<Vec<u8>> {
    headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
}

impl Host for BenchHost {
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.map_read(&self.request_headers_read);
        find(&self.request_headers, name)
    }
    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        self.call();
        self.request_body.get(..size).map(<[u8]>::to_vec)
    }
    fn upstream_response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.map_read(&self.upstream_headers_read);
        find(&self.upstream_headers, name)
    }
    fn upstream_response_body(&self, size: usize) -> Option<Vec<u8>> {
        self.call();
        self.upstream_body.get(..size).map(<[u8]>::to_vec)
    }
    fn dispatch(&mut self, call: &UpstreamCall) -> Result<u32, String> {
        self.call();
        black_box(call);
        self.dispatched += 1;
        Ok(1)
    }
    fn send_response(&mut self, response: &Response) {
        self.call();
        self.status = black_box(response).status;
    }
    fn count(&mut self, counter: Counter<'_>) {
        self.call();
        let mut name = std::mem::take(&mut self.name);
        counter.write_name(&mut name);
        match self.counters.get_mut(&name) {
            Some(n) => *n += 1,
            None => {
                self.counters.insert(name.clone(), 1);
            }
        }
        self.name = name;
    }
    fn now(&self) -> Option<Duration> {
        self.call();
        Some(self.clock)
    }
    fn record(&mut self, histogram: Histogram, value: u64) {
        self.call();
        black_box((histogram.name(), value));
    }
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.call();
        match self.shared.get(key) {
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        }
    }
    fn waiting(&self) -> usize {
        0
    }

    fn shared_set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> SharedWrite {
        self.call();
        // As Envoy's shared data: a missing key is created whatever the CAS.
        let current = self.shared.get(key).map(|(_, c)| *c);
        if let (Some(cas), Some(current)) = (cas, current) {
            if cas != current {
                return SharedWrite::Conflict;
            }
        }
        match self.shared.get_mut(key) {
            Some(entry) => {
                entry.0.clear();
                entry.0.extend_from_slice(value);
                entry.1 += 1;
            }
            None => {
                self.shared.insert(key.to_string(), (value.to_vec(), 1));
            }
        }
        SharedWrite::Stored
    }
}

// ------------------------------------------------------------------------------------------------
// The mix (tests/soak/entra_mix.lua, same weights) and the stand-in's answers (bench/standin)

const USER_ID: &str = "5a1c7e0e-0000-4000-8000-0000000000b1";
const GROUP_ID: &str = "5a1c7e0e-0000-4000-8000-0000000000c1";
const OTHER_USER: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

fn user_doc() -> String {
    format!(
        concat!(
            r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:omni:params:1.0:UserAttribute"],"#,
            r#""id":"{id}","userName":"bench-user@example.com","displayName":"Bench User","active":true,"#,
            r#""urn:omni:params:1.0:UserAttribute":{{"omni_user_id":"{id}","omni_is_org_admin":false,"#,
            r#""omni_user_timezone":null}},"meta":{{"resourceType":"User","created":"2026-11-29T00:00:00Z","#,
            r#""lastModified":"2026-11-29T00:00:00Z","location":"http://scim-upstream/v2/Users/{id}"}}}}"#
        ),
        id = USER_ID
    )
}

fn group_doc() -> String {
    format!(
        concat!(
            r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"{id}","displayName":"Bench Group","#,
            r#""meta":{{"resourceType":"Group","created":"2026-11-29T00:00:00Z","#,
            r#""lastModified":"2026-11-29T00:00:00Z","location":"http://scim-upstream/v2/Groups/{id}"}}}}"#
        ),
        id = GROUP_ID
    )
}

fn list(resource: &str) -> String {
    format!(
        r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"startIndex":1,"itemsPerPage":1,"Resources":[{resource}]}}"#
    )
}

/// One request of the mix and the upstream's answer to it.
struct Case {
    kind: &'static str,
    /// Percent of the mix (entra_mix.lua).
    weight: u32,
    method: &'static str,
    path: String,
    body: Option<String>,
    /// The upstream's status and body; `None` when the edge answers itself.
    upstream: Option<(u16, Option<String>)>,
    expect: u16,
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn cases() -> Vec<Case> {
    let prefix = "/api/scim/v2";
    let name = "soak-1a2b3c4d-t1-42@example.com";
    let create = format!(
        concat!(
            r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"#,
            r#""externalId":"8f14e45f-ceea-4e7a-9c1b-2f5d3a6b7c8d","userName":"{n}","active":true,"displayName":"Soak User 42","#,
            r#""emails":[{{"primary":true,"type":"work","value":"{n}"}}],"meta":{{"resourceType":"User"}},"#,
            r#""name":{{"formatted":"Soak User","familyName":"User","givenName":"Soak"}},"roles":[],"#,
            r#""urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"R&D"}}"#
        ),
        n = name
    );
    let patch_default = concat!(
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":["#,
        r#"{"op":"Replace","path":"active","value":"False"},"#,
        r#"{"op":"Replace","value":{"displayName":"Soak 4711","name.givenName":"Given815","name.familyName":"Family"}}]}"#
    );
    let patch_flag = format!(
        concat!(
            r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":["#,
            r#"{{"op":"replace","path":"active","value":false}},"#,
            r#"{{"op":"replace","path":"emails[type eq \"work\"].value","value":"{n}"}},"#,
            r#"{{"op":"replace","value":{{"displayName":"Flag 4711","name.givenName":"Kkom","#,
            r#""urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"815"}}}}]}}"#
        ),
        n = name
    );
    let group_add = format!(
        r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"Add","path":"members","value":[{{"$ref":null,"value":"{USER_ID}"}}]}}]}}"#
    );
    let group_remove_default = format!(
        r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"Remove","path":"members","value":[{{"value":"{USER_ID}"}},{{"value":"{OTHER_USER}"}}]}}]}}"#
    );
    let group_remove_flag = format!(
        r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"remove","path":"members[value eq \"{USER_ID}\"]"}}]}}"#
    );
    let users = format!("{prefix}/Users/{USER_ID}");
    let groups = format!("{prefix}/Groups/{GROUP_ID}");
    let filter = |resource: &str, f: &str, extra: &str| format!("{prefix}/{resource}?filter={}{extra}", pct(f));
    let user_list = Some((200, Some(list(&user_doc()))));
    vec![
        Case {
            kind: "create_user",
            weight: 18,
            method: "POST",
            path: format!("{prefix}/Users"),
            body: Some(create),
            upstream: Some((201, Some(user_doc()))),
            expect: 201,
        },
        Case {
            kind: "patch_user_default",
            weight: 12,
            method: "PATCH",
            path: users.clone(),
            body: Some(patch_default.to_string()),
            upstream: Some((200, Some(user_doc()))),
            expect: 200,
        },
        Case {
            kind: "patch_user_flag",
            weight: 8,
            method: "PATCH",
            path: users,
            body: Some(patch_flag),
            upstream: Some((200, Some(user_doc()))),
            expect: 200,
        },
        Case {
            kind: "get_username",
            weight: 16,
            method: "GET",
            path: filter("Users", &format!(r#"userName eq "{name}""#), ""),
            body: None,
            upstream: user_list.clone(),
            expect: 200,
        },
        Case {
            kind: "get_username_missing",
            weight: 6,
            method: "GET",
            path: filter("Users", r#"userName eq "6f9619ff-8b86-4d01-b42d-00c04fc964ff""#, ""),
            body: None,
            upstream: user_list,
            expect: 200,
        },
        Case {
            kind: "get_externalid",
            weight: 8,
            method: "GET",
            path: filter("Users", r#"externalId eq "8f14e45f-ceea-4e7a-9c1b-2f5d3a6b7c8d""#, ""),
            body: None,
            // The omni mapping does not pass externalId: the edge answers an empty list itself.
            upstream: None,
            expect: 200,
        },
        Case {
            kind: "get_group_displayname",
            weight: 6,
            method: "GET",
            path: filter("Groups", r#"displayName eq "bench-group-3""#, "&excludedAttributes=members"),
            body: None,
            upstream: Some((200, Some(list(&group_doc())))),
            expect: 200,
        },
        Case {
            kind: "group_add",
            weight: 12,
            method: "PATCH",
            path: groups.clone(),
            body: Some(group_add),
            upstream: Some((204, None)),
            expect: 204,
        },
        Case {
            kind: "group_remove_default",
            weight: 7,
            method: "PATCH",
            path: groups.clone(),
            body: Some(group_remove_default),
            upstream: Some((204, None)),
            expect: 204,
        },
        Case {
            kind: "group_remove_flag",
            weight: 7,
            method: "PATCH",
            path: groups,
            body: Some(group_remove_flag),
            upstream: Some((204, None)),
            expect: 204,
        },
    ]
}

impl Case {
    fn host(&self) -> BenchHost {
        let mut host = BenchHost::default();
        let mut headers: Vec<(&'static str, Vec<u8>)> = vec![
            (":method", self.method.into()),
            (":path", self.path.clone().into_bytes()),
            (":authority", b"127.0.0.1:10000".to_vec()),
            (":scheme", b"http".to_vec()),
            ("authorization", format!("Bearer {CLIENT_TOKEN}").into_bytes()),
            ("user-agent", b"wrk".to_vec()),
        ];
        if let Some(body) = &self.body {
            headers.push(("content-type", b"application/scim+json".to_vec()));
            headers.push(("content-length", body.len().to_string().into_bytes()));
            host.request_body = body.clone().into_bytes();
        }
        host.request_headers = headers;
        if let Some((status, body)) = &self.upstream {
            host.upstream_headers = vec![(":status", status.to_string().into_bytes())];
            if let Some(body) = body {
                host.upstream_headers.push(("content-type", b"application/scim+json".to_vec()));
                host.upstream_body = body.clone().into_bytes();
            }
            if *status == 201 {
                host.upstream_headers
                    .push(("location", format!("http://scim-upstream/v2/Users/{USER_ID}").into_bytes()));
            }
        }
        host
    }
}

/// Time and allocations of the three callbacks of one exchange.
#[derive(Clone, Copy, Default)]
struct Phases {
    ns: [u64; 3],
    allocs: [u64; 3],
    bytes: [u64; 3],
}

/// One whole exchange, the way Envoy drives it (the body in one piece, as the buffer filter hands
/// it over); the host is reused across exchanges, as a VM's state is.
fn exchange(config: &Rc<Config>, case: &Case, host: &mut BenchHost, id: u32, phases: Option<&mut Phases>) -> u16 {
    let mut marks = [(Instant::now(), allocs()); 4];
    host.new_stream();
    let mut exchange = Exchange::new(Rc::clone(config), id);
    let body_len = host.request_body.len();
    let flow = exchange.on_request_headers(host, body_len == 0);
    marks[1] = (Instant::now(), allocs());
    if body_len > 0 && flow == Flow::Continue {
        exchange.on_request_body(host, body_len, true);
    }
    marks[2] = (Instant::now(), allocs());
    if case.upstream.is_some() {
        host.clock += Duration::from_micros(300);
        let answer_len = host.upstream_body.len();
        exchange.on_upstream_response(host, 1, answer_len);
    }
    marks[3] = (Instant::now(), allocs());
    if let Some(phases) = phases {
        for i in 0..3 {
            phases.ns[i] += (marks[i + 1].0 - marks[i].0).as_nanos() as u64;
            phases.allocs[i] += marks[i + 1].1 .0 - marks[i].1 .0;
            phases.bytes[i] += marks[i + 1].1 .1 - marks[i].1 .1;
        }
    }
    black_box(exchange);
    host.status
}

#[cfg(not(target_family = "wasm"))]
fn criterion_benches(c: &mut Criterion, config: &Rc<Config>, cases: &[Case]) {
    let mut group = c.benchmark_group("pipeline");
    for case in cases {
        let mut host = case.host();
        group.bench_function(case.kind, |b| b.iter(|| exchange(config, case, &mut host, 7, None)));
    }
    group.finish();
}

/// Per kind: (ns/request, allocations/request, bytes/request, per-phase figures) over `n` runs.
fn table(config: &Rc<Config>, cases: &[Case], n: u64) {
    println!();
    println!("pipeline: {n} exchanges per kind; ns and allocations per request (headers / body / answer)");
    println!(
        "| {:<22} | {:>3} | {:>8} | {:>24} | {:>7} | {:>16} | {:>8} | {:>10} |",
        "kind", "%", "ns/req", "ns: headers/body/answer", "allocs", "headers/body/ans", "bytes", "host calls"
    );
    println!("|{:-<24}|{:->5}|{:->10}|{:->26}|{:->9}|{:->18}|{:->10}|{:->12}|", "", "", "", "", "", "", "", "");
    let (mut mix_ns, mut mix_allocs, mut mix_bytes, mut mix_calls, mut weights) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut mix_phase_ns = [0.0f64; 3];
    let mut mix_phase_allocs = [0.0f64; 3];
    for case in cases {
        let mut host = case.host();
        let status = exchange(config, case, &mut host, 1, None);
        assert_eq!(status, case.expect, "{}: the edge answered {status}", case.kind);
        let mut phases = Phases::default();
        let (a0, b0) = allocs();
        let (calls0, logs0) = (host.calls.get(), LOG_CALLS.load(Relaxed));
        let t0 = Instant::now();
        for i in 0..n {
            exchange(config, case, &mut host, i as u32, Some(&mut phases));
        }
        let elapsed = t0.elapsed().as_nanos() as f64;
        let (a1, b1) = allocs();
        let calls = (host.calls.get() - calls0 + LOG_CALLS.load(Relaxed) - logs0) as f64 / n as f64;
        let nf = n as f64;
        let ns = elapsed / nf;
        let per = |x: u64| x as f64 / nf;
        let (al, by) = (per(a1 - a0), per(b1 - b0));
        let w = f64::from(case.weight);
        mix_ns += w * ns;
        mix_allocs += w * al;
        mix_bytes += w * by;
        mix_calls += w * calls;
        weights += w;
        for i in 0..3 {
            mix_phase_ns[i] += w * per(phases.ns[i]);
            mix_phase_allocs[i] += w * per(phases.allocs[i]);
        }
        println!(
            "| {:<22} | {:>3} | {:>8.0} | {:>24} | {:>7.0} | {:>16} | {:>8.0} | {:>10.1} |",
            case.kind,
            case.weight,
            ns,
            format!("{:.0} / {:.0} / {:.0}", per(phases.ns[0]), per(phases.ns[1]), per(phases.ns[2])),
            al,
            format!("{:.0} / {:.0} / {:.0}", per(phases.allocs[0]), per(phases.allocs[1]), per(phases.allocs[2])),
            by,
            calls,
        );
    }
    println!(
        "| {:<22} | {:>3} | {:>8.0} | {:>24} | {:>7.0} | {:>16} | {:>8.0} | {:>10.1} |",
        "weighted mix",
        weights as u32,
        mix_ns / weights,
        format!(
            "{:.0} / {:.0} / {:.0}",
            mix_phase_ns[0] / weights,
            mix_phase_ns[1] / weights,
            mix_phase_ns[2] / weights
        ),
        mix_allocs / weights,
        format!(
            "{:.0} / {:.0} / {:.0}",
            mix_phase_allocs[0] / weights,
            mix_phase_allocs[1] / weights,
            mix_phase_allocs[2] / weights
        ),
        mix_bytes / weights,
        mix_calls / weights,
    );
    println!("(ns include the timing marks around each callback; criterion's figures above have none)");
    println!(
        "(host calls: what src/proxy/mod.rs makes for the exchange: each header map once, each body, counter, \
         clock read, histogram, shared-data access, log line, the callout and the answer; Envoy's own callbacks \
         into the filter and its allocations in the VM are not counted)"
    );
    if cfg!(target_family = "wasm") {
        println!("(under wasm the filter's allocator serves and allocations are not counted: see the native table)");
    }
}

fn main() {
    log::set_logger(&LOGGER).expect("one logger");
    log::set_max_level(log::LevelFilter::Info);
    let config = config();
    let cases = cases();
    // `cargo bench` passes --bench; `cargo test --benches` does not: a quick smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    #[cfg(not(target_family = "wasm"))]
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    #[cfg(not(target_family = "wasm"))]
    {
        criterion_benches(&mut criterion, &config, &cases);
        criterion.final_summary();
    }
    table(&config, &cases, if full { 20_000 } else { 10 });
}
