//! `scim-edge`: the operator's command line. It makes client credentials (static tokens, OAuth
//! clients, access-token signing keys), checks a configuration
//! with the filter's own compiler, and explains what the filter does with one request, running
//! the filter's own pipeline. Native only: on wasm32 this binary is an empty stub, so neither clap
//! nor this code reaches the filter.

#[cfg(not(target_arch = "wasm32"))]
mod check;
#[cfg(not(target_arch = "wasm32"))]
mod explain;
#[cfg(not(target_arch = "wasm32"))]
mod source;
#[cfg(not(target_arch = "wasm32"))]
mod token;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    use clap::Parser;

    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Token { command: cli::TokenCommand::New(args) } => token::new(&args),
        cli::Command::Client { command: cli::ClientCommand::New(args) } => token::new_client(&args),
        cli::Command::Key { command: cli::KeyCommand::New(args) } => token::new_key(&args),
        cli::Command::Check(args) => check::run(&args),
        cli::Command::Explain(args) => explain::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("scim-edge: error: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::path::PathBuf;

    use clap::{Args, Parser, Subcommand};

    /// The operator's command for scim-edge, the SCIM edge gateway between Microsoft Entra ID and
    /// Omni: client credentials, a configuration check and a dry run of one request, all with the
    /// filter's own code.
    #[derive(Parser, Debug)]
    #[command(name = "scim-edge", version, propagate_version = true)]
    pub struct Cli {
        #[command(subcommand)]
        pub command: Command,
    }

    #[derive(Subcommand, Debug)]
    pub enum Command {
        /// Static bearer tokens for the SCIM client (Entra's "Secret Token").
        Token {
            #[command(subcommand)]
            command: TokenCommand,
        },
        /// OAuth 2.0 clients for the edge's token endpoint (Entra's "Client Identifier" and
        /// "Client Secret").
        Client {
            #[command(subcommand)]
            command: ClientCommand,
        },
        /// Signing keys for the edge's OAuth access tokens (`oauth.signing_keys`).
        Key {
            #[command(subcommand)]
            command: KeyCommand,
        },
        /// Check plugin configurations (JSON) or whole Envoy configurations (YAML) with the
        /// filter's own configuration compiler. Exit status 0 when every scim-edge filter's
        /// configuration compiles, 1 when one does not, 2 when a file cannot be used.
        Check(CheckArgs),
        /// Run one request through the filter's pipeline without Envoy and say what it does: the
        /// route, the edge's own answer or the exact upstream request, each normalisation, each
        /// attribute stripped and why, and what the client receives.
        Explain(ExplainArgs),
    }

    #[derive(Subcommand, Debug)]
    pub enum TokenCommand {
        /// Make a fresh token from the operating system's secure random source: print it once,
        /// with the entry (its name and SHA-256 digest) for `tokens` in the plugin configuration.
        New(TokenNewArgs),
    }

    #[derive(Args, Debug)]
    pub struct TokenNewArgs {
        /// The token's name in logs and counters: 1 to 64 of A-Z a-z 0-9 - _ (e.g. entra-2027).
        #[arg(long)]
        pub name: String,
        /// Write the token to FILE (created with mode 0600; an existing file is never
        /// overwritten) instead of printing it.
        #[arg(long, value_name = "FILE")]
        pub out: Option<PathBuf>,
        /// Print one JSON object: {"name", "token", "entry"} (without "token" when --out is given).
        #[arg(long)]
        pub json: bool,
    }

    #[derive(Subcommand, Debug)]
    pub enum ClientCommand {
        /// Make a client id and a fresh secret (secure random source): print the secret once, with
        /// the entry (name, client_id and the secret's SHA-256) for `oauth.clients`.
        New(ClientNewArgs),
    }

    #[derive(Args, Debug)]
    pub struct ClientNewArgs {
        /// The client's name in logs and counters: 1 to 64 of A-Z a-z 0-9 - _ (e.g. entra).
        #[arg(long)]
        pub name: String,
        /// The client id Entra sends (default: a fresh random one).
        #[arg(long, value_name = "ID")]
        pub client_id: Option<String>,
        /// Write the secret to FILE (mode 0600, never overwritten) instead of printing it.
        #[arg(long, value_name = "FILE")]
        pub out: Option<PathBuf>,
        /// Print one JSON object: {"name", "client_id", "client_secret", "entry"}.
        #[arg(long)]
        pub json: bool,
    }

    #[derive(Subcommand, Debug)]
    pub enum KeyCommand {
        /// Make a fresh signing key (32 random bytes, base64url) for the access tokens: print it
        /// once, for the environment variable Envoy passes to the VM, with the `signing_keys` entry.
        New(KeyNewArgs),
    }

    #[derive(Args, Debug)]
    pub struct KeyNewArgs {
        /// The key id (`kid`) tokens name it by: 1 to 64 of A-Z a-z 0-9 - _ (e.g. 2027-01).
        #[arg(long)]
        pub kid: String,
        /// The environment variable that will hold the key (listed in host_env_keys).
        #[arg(long, value_name = "NAME", default_value = "SCIM_EDGE_TOKEN_KEY")]
        pub env: String,
        /// Write the key to FILE (mode 0600, never overwritten) instead of printing it.
        #[arg(long, value_name = "FILE")]
        pub out: Option<PathBuf>,
        /// Print one JSON object: {"kid", "env", "key", "entry"}.
        #[arg(long)]
        pub json: bool,
    }

    #[derive(Args, Debug)]
    pub struct CheckArgs {
        /// Plugin configurations (JSON), or Envoy configurations (YAML or JSON) holding one or
        /// more scim-edge wasm filters (listeners, ECDS extension configs).
        #[arg(value_name = "FILE", required = true)]
        pub files: Vec<PathBuf>,
        /// Treat environment variables the configuration reads (upstream.bearer_token_env) as
        /// set, for a CI job that does not hold the secret. Without it a variable missing from
        /// this shell is an error, as it is for the filter.
        #[arg(long)]
        pub assume_env: bool,
    }

    #[derive(Args, Debug)]
    pub struct ExplainArgs {
        /// The plugin configuration (JSON) or an Envoy configuration (YAML) with one scim-edge
        /// filter (the first one is used when there are several).
        #[arg(long, value_name = "FILE")]
        pub config: PathBuf,
        /// The request method: GET, POST, PUT, PATCH or DELETE.
        #[arg(value_name = "METHOD")]
        pub method: String,
        /// The request path as the client sends it, query included (quote it in the shell):
        /// '/api/scim/v2/Users?filter=userName eq "ada@example.com"'.
        #[arg(value_name = "PATH")]
        pub path: String,
        /// The request body (a JSON file; '-' reads standard input).
        #[arg(long, value_name = "FILE")]
        pub body: Option<PathBuf>,
        /// The status the upstream answers with; without it the explanation stops at the upstream
        /// request.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(100..=599))]
        pub upstream_status: Option<u16>,
        /// The body the upstream answers with (JSON; sent as application/scim+json).
        #[arg(long, value_name = "FILE", requires = "upstream_status")]
        pub upstream_body: Option<PathBuf>,
        /// The host the client calls (`:authority`): the public base of `location` and `meta`.
        #[arg(long, value_name = "HOST", default_value = "scim-edge.example")]
        pub authority: String,
        /// Print the same explanation as one JSON object, for scripts.
        #[arg(long)]
        pub json: bool,
    }
}
