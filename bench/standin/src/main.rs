//! `scim-standin PORT`: the upstream of `make bench`. Answers every SCIM request of the bench's
//! Entra-shaped mix with a canned Omni-shaped answer, built per request from the method and path
//! (and the Host header for the URLs it names, as Omni and scim2-server do):
//!
//! | request | answer |
//! |---|---|
//! | `GET …/Users?…` | 200 ListResponse with one user (Omni's system attributes included) |
//! | `GET …/Groups?…` | 200 ListResponse with one group |
//! | `POST …/Users`, `POST …/Groups` | 201, the resource, `Location` |
//! | `PATCH`/`PUT …/Users/{id}` | 200, the user |
//! | `PATCH …/Groups/{id}`, `DELETE` | 204 |
//! | no `Authorization: Bearer …` | 401 |
//! | anything else | 404 |
//!
//! It accepts both the client's (`/api/scim/v2/…`, plain Envoy routing) and the edge's (`/v2/…`)
//! paths and any bearer token. It reads and discards request bodies (Content-Length only; chunked
//! is answered 411). It stores nothing: every answer costs the same whatever ran before.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const USER_ID: &str = "5a1c7e0e-0000-4000-8000-0000000000b1";
const GROUP_ID: &str = "5a1c7e0e-0000-4000-8000-0000000000c1";
const STAMP: &str = "2026-11-29T00:00:00Z";

fn user(base: &str, id: &str) -> String {
    format!(
        concat!(
            r#"{{"schemas":["{s}","urn:omni:params:1.0:UserAttribute"],"id":"{id}","userName":"bench-user@example.com","#,
            r#""displayName":"Bench User","active":true,"urn:omni:params:1.0:UserAttribute":{{"omni_user_id":"{id}","#,
            r#""omni_is_org_admin":false,"omni_user_timezone":null}},"meta":{{"resourceType":"User","created":"{t}","#,
            r#""lastModified":"{t}","location":"{base}/Users/{id}"}}}}"#
        ),
        s = USER_SCHEMA,
        id = id,
        t = STAMP,
        base = base
    )
}

fn group(base: &str, id: &str) -> String {
    format!(
        concat!(
            r#"{{"schemas":["{s}"],"id":"{id}","displayName":"Bench Group","#,
            r#""meta":{{"resourceType":"Group","created":"{t}","lastModified":"{t}","location":"{base}/Groups/{id}"}}}}"#
        ),
        s = GROUP_SCHEMA,
        id = id,
        t = STAMP,
        base = base
    )
}

fn list(resource: String) -> String {
    format!(r#"{{"schemas":["{LIST_SCHEMA}"],"totalResults":1,"startIndex":1,"itemsPerPage":1,"Resources":[{resource}]}}"#)
}

fn error(status: u16, detail: &str) -> String {
    format!(r#"{{"schemas":["{ERROR_SCHEMA}"],"status":"{status}","detail":"{detail}"}}"#)
}

/// (status, Location, body) for one request.
fn answer(method: &str, target: &str, host: &str, authorised: bool) -> (u16, Option<String>, Option<String>) {
    if !authorised {
        return (401, None, Some(error(401, "Authentication failed")));
    }
    let path = target.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let at = segments.iter().position(|s| *s == "Users" || *s == "Groups");
    let Some(at) = at else { return (404, None, Some(error(404, "Resource not found"))) };
    let base = format!("http://{host}/v2");
    let users = segments[at] == "Users";
    let id = segments.get(at + 1).copied();
    match (method, id, users) {
        ("GET", None, true) => (200, None, Some(list(user(&base, USER_ID)))),
        ("GET", None, false) => (200, None, Some(list(group(&base, GROUP_ID)))),
        ("GET", Some(id), true) | ("PATCH", Some(id), true) | ("PUT", Some(id), true) => {
            (200, None, Some(user(&base, id)))
        }
        ("GET", Some(id), false) | ("PUT", Some(id), false) => (200, None, Some(group(&base, id))),
        ("POST", None, true) => (201, Some(format!("{base}/Users/{USER_ID}")), Some(user(&base, USER_ID))),
        ("POST", None, false) => (201, Some(format!("{base}/Groups/{GROUP_ID}")), Some(group(&base, GROUP_ID))),
        ("PATCH", Some(_), false) | ("DELETE", Some(_), _) => (204, None, None),
        _ => (405, None, Some(error(405, "method not allowed here"))),
    }
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line = String::new();
    let mut discard = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let (mut length, mut host, mut authorised, mut chunked, mut close) = (0usize, String::new(), false, false, false);
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else { continue };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "host" => host = value.to_string(),
                "authorization" => authorised = value.starts_with("Bearer "),
                "transfer-encoding" => chunked = value.contains("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        if chunked {
            writer.write_all(b"HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?;
            return Ok(());
        }
        discard.resize(length, 0);
        reader.read_exact(&mut discard)?;
        let (status, location, body) = answer(&method, &target, &host, authorised);
        let body = body.unwrap_or_default();
        let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
        if !body.is_empty() {
            head.push_str("content-type: application/scim+json\r\n");
        }
        if let Some(location) = location {
            head.push_str(&format!("location: {location}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(&body);
        writer.write_all(head.as_bytes())?;
        if close {
            return Ok(());
        }
    }
}

fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8090);
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
        eprintln!("scim-standin: cannot listen on 127.0.0.1:{port}: {e}");
        std::process::exit(1)
    });
    eprintln!("scim-standin: listening on 127.0.0.1:{port}");
    for stream in listener.incoming().flatten() {
        thread::spawn(move || {
            let _ = serve(stream);
        });
    }
}
