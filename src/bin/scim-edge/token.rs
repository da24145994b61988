//! `scim-edge token new`, `client new` and `key new`: a credential made from the system's random
//! source, shown once (or written to a 0600 file), and its configuration entry.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::process::ExitCode;

use scim_edge::auth::sha256_hex;
// Base64url without padding (RFC 4648 §5): token68 characters (RFC 6750 §2.1), safe in any
// header or form field; the filter's own codec.
use scim_edge::base64url::url as base64url;

use crate::cli::{ClientNewArgs, KeyNewArgs, TokenNewArgs};

/// 32 random bytes: 256 bits, as many as the digest keeps.
const TOKEN_BYTES: usize = 32;

pub fn new(args: &TokenNewArgs) -> Result<ExitCode, String> {
    check_name(&args.name)?;
    let token = base64url(&random_bytes()?);
    let entry = serde_json::json!({"name": args.name, "sha256": sha256_hex(token.as_bytes())});
    if let Some(path) = &args.out {
        write_secret(path, &token)?;
    }
    if args.json {
        let mut shown = serde_json::json!({"name": args.name, "entry": entry});
        if args.out.is_none() {
            shown["token"] = serde_json::Value::String(token);
        }
        println!("{shown}");
        return Ok(ExitCode::SUCCESS);
    }
    match &args.out {
        Some(path) => println!(
            "# token \"{}\" written to {} (mode 0600): enter it in Entra as the Secret Token.",
            args.name,
            path.display()
        ),
        None => {
            println!("# token \"{}\": enter it in Entra as the Secret Token. It is shown only this once.", args.name);
            println!("token: {token}");
        }
    }
    println!("# the entry for \"tokens\" in the plugin configuration (the gateway keeps only the digest):");
    println!("{entry}");
    Ok(ExitCode::SUCCESS)
}

/// `scim-edge client new`: an OAuth client for the token endpoint.
pub fn new_client(args: &ClientNewArgs) -> Result<ExitCode, String> {
    check_name(&args.name)?;
    let client_id = match &args.client_id {
        Some(id)
            if !id.is_empty()
                && id.len() <= 256
                && id.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') =>
        {
            id.clone()
        }
        Some(_) => return Err("--client-id: 1 to 256 printable characters, no quote or backslash".into()),
        None => format!("scim-edge-{}", &base64url(&random_bytes()?)[..16]),
    };
    let secret = base64url(&random_bytes()?);
    let entry =
        serde_json::json!({"name": args.name, "client_id": client_id, "secret_sha256": sha256_hex(secret.as_bytes())});
    if let Some(path) = &args.out {
        write_secret(path, &secret)?;
    }
    if args.json {
        let mut shown = serde_json::json!({"name": args.name, "client_id": client_id, "entry": entry});
        if args.out.is_none() {
            shown["client_secret"] = serde_json::Value::String(secret);
        }
        println!("{shown}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("# OAuth client \"{}\": in Entra, Client Identifier and Client Secret.", args.name);
    println!("client_id: {client_id}");
    match &args.out {
        Some(path) => println!("# client secret written to {} (mode 0600)", path.display()),
        None => println!("client_secret: {secret}\n# the secret is shown only this once"),
    }
    println!("# the entry for \"oauth.clients\" in the plugin configuration (the gateway keeps only the digest):");
    println!("{entry}");
    Ok(ExitCode::SUCCESS)
}

/// `scim-edge key new`: a signing key for the edge's access tokens.
pub fn new_key(args: &KeyNewArgs) -> Result<ExitCode, String> {
    check_name(&args.kid).map_err(|e| e.replacen("--name", "--kid", 1))?;
    let valid_env = !args.env.is_empty() && args.env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid_env {
        return Err("--env: an environment variable name (A-Z a-z 0-9 _)".into());
    }
    let key = base64url(&random_bytes()?);
    let entry = serde_json::json!({"kid": args.kid, "secret_env": args.env});
    if let Some(path) = &args.out {
        write_secret(path, &key)?;
    }
    if args.json {
        let mut shown = serde_json::json!({"kid": args.kid, "env": args.env, "entry": entry});
        if args.out.is_none() {
            shown["key"] = serde_json::Value::String(key);
        }
        println!("{shown}");
        return Ok(ExitCode::SUCCESS);
    }
    match &args.out {
        Some(path) => println!(
            "# key \"{}\" written to {} (mode 0600): set {} to it for Envoy.",
            args.kid,
            path.display(),
            args.env
        ),
        None => {
            println!(
                "# key \"{}\": set {} to it in Envoy's environment (every replica). Shown only this once.",
                args.kid, args.env
            );
            println!("{}={key}", args.env);
        }
    }
    println!(
        "# the entry for \"oauth.signing_keys\" (list {} in host_env_keys; signing_kid picks the signing key):",
        args.env
    );
    println!("{entry}");
    Ok(ExitCode::SUCCESS)
}

/// Writes a secret to a new file only the owner can read (never overwriting one).
fn write_secret(path: &std::path::Path, secret: &str) -> Result<(), String> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    // Owner read and write only: it is a credential.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {} ({e}); choose a path that does not exist yet", path.display()))?;
    file.write_all(format!("{secret}\n").as_bytes()).map_err(|e| format!("cannot write {} ({e})", path.display()))
}

/// The rule the configuration applies to `tokens[].name` (src/config.rs).
fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err("--name: 1 to 64 characters from A-Z a-z 0-9 - _ (it becomes part of metric names), e.g. --name entra-2027"
            .into())
    }
}

/// From the kernel's CSPRNG (`/dev/urandom` never blocks once the pool is initialised, which it
/// is long before a shell runs).
fn random_bytes() -> Result<[u8; TOKEN_BYTES], String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read the system's random source /dev/urandom ({e})"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        // RFC 4648 §10, padding removed, URL alphabet.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), expected);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn tokens_differ_and_are_token68() {
        let a = base64url(&random_bytes().unwrap());
        let b = base64url(&random_bytes().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(scim_edge::auth::is_token68(a.as_bytes()));
    }
}
