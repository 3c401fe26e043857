//! Which MCP servers the user configured: Claude Code's `.mcp.json` and `[mcp.servers.NAME]`
//! tables in cove's TOML, resolved to [`ServerSpec`]s with `${VAR}` expanded; plus the edits
//! `cove mcp add/remove` make to `.mcp.json`, and the `mcp__<server>__<tool>` names tools get.
//!
//! Must not read files or the process environment itself (callers pass the text and a variable
//! lookup, so trust decisions and tests stay with them), start servers (that is `client`), or
//! decide whether a project's servers may run.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What every MCP tool name starts with in cove: `mcp__<server>__<tool>`.
pub const PREFIX: &str = "mcp__";
/// Between the server's name and the tool's in a qualified name.
pub const SEPARATOR: &str = "__";
/// The key of `.mcp.json` that holds the servers.
const SERVERS_KEY: &str = "mcpServers";
/// The keys a server entry may have; anything else in `.mcp.json` is ignored (other clients
/// add their own keys), while cove's TOML refuses it (a typo there should not pass silently).
const ENTRY_KEYS: &[&str] = &["type", "command", "args", "env", "url", "headers"];

/// A configuration that cannot be used, always naming the server (or the file) at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is not JSON at all.
    #[error(".mcp.json is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not the shape of an `.mcp.json` (say, `mcpServers` is a list).
    #[error(".mcp.json: {0}")]
    Shape(String),
    /// One server's entry is wrong: a missing `command`/`url`, an unsupported `type`, a bad
    /// field.
    #[error("MCP server `{server}`: {message}")]
    Server {
        /// The server's name.
        server: String,
        /// What is wrong with its entry.
        message: String,
    },
    /// `${VAR}` names a variable that is not set, and gives no `:-default`.
    #[error(
        "MCP server `{server}`: environment variable `{var}` is not set and has no default (`${{{var}:-default}}` gives one)"
    )]
    UnsetVariable {
        /// The server whose entry uses it.
        server: String,
        /// The variable's name.
        var: String,
    },
    /// A server name cove cannot put into `mcp__<server>__<tool>`.
    #[error(
        "`{0}` is not a valid MCP server name: use at most 40 letters, digits, `-` and `_`, without `__` (it separates server and tool in `mcp__server__tool`, which must fit in 64 characters)"
    )]
    InvalidName(String),
    /// `add_server` with a name that is already there.
    #[error("MCP server `{0}` already exists in .mcp.json")]
    Exists(String),
    /// `remove_server` with a name that is not there.
    #[error("no MCP server `{0}` in .mcp.json")]
    NotFound(String),
}

/// One server, ready to start: its name and how to reach it, variables expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The name under `mcpServers` (or `[mcp.servers.NAME]`); valid per [`validate_name`].
    pub name: String,
    /// How to reach it.
    pub transport: Transport,
}

/// How to reach a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A child process speaking JSON-RPC on stdin/stdout.
    Stdio {
        /// The program, found on `PATH` unless it is a path.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Set on top of whatever environment the caller gives the child.
        env: BTreeMap<String, String>,
    },
    /// A Streamable HTTP endpoint.
    Http {
        /// The endpoint (`http://` or `https://`), typically ending in `/mcp`.
        url: String,
        /// Sent with every request (typically `Authorization`).
        headers: BTreeMap<String, String>,
    },
}

/// One server as written, before `${VAR}` expansion: a `[mcp.servers.NAME]` table, or (with
/// unknown keys dropped) one entry of `.mcp.json`'s `mcpServers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerEntry {
    /// `stdio`, `http` or `streamable-http`; when absent, `command` means stdio and `url` HTTP.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The program of a stdio server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Its extra environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The endpoint of an HTTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The headers sent to it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// The servers of cove's TOML (`[mcp.servers.NAME]` tables), ordered by name; embed it in the
/// config as the `servers` field of an `[mcp]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct McpServers(pub BTreeMap<String, ServerEntry>);

impl McpServers {
    /// Every server, by name, with `${VAR}` and `${VAR:-default}` expanded through `lookup`.
    pub fn resolve(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<ServerSpec>, ConfigError> {
        self.0
            .iter()
            .map(|(name, entry)| entry.resolve(name, lookup))
            .collect()
    }
}

/// Which transport an entry asks for, before anything is expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stdio,
    Http,
}

impl ServerEntry {
    /// This entry as the server `name`, with variables expanded through `lookup`.
    pub fn resolve(
        &self,
        name: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServerSpec, ConfigError> {
        validate_name(name)?;
        let expand = |text: &str| expand(text, name, lookup);
        let transport = match self.kind(name)? {
            Kind::Stdio => {
                let command = expand(self.command.as_deref().unwrap_or_default())?;
                if command.trim().is_empty() {
                    return Err(server_error(name, "`command` is empty"));
                }
                Transport::Stdio {
                    command,
                    args: self
                        .args
                        .iter()
                        .map(|a| expand(a))
                        .collect::<Result<_, _>>()?,
                    env: self
                        .env
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), expand(v)?)))
                        .collect::<Result<_, ConfigError>>()?,
                }
            }
            Kind::Http => {
                let url = expand(self.url.as_deref().unwrap_or_default())?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(server_error(
                        name,
                        &format!("`url` must start with http:// or https:// (got `{url}`)"),
                    ));
                }
                Transport::Http {
                    url,
                    headers: self
                        .headers
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), expand(v)?)))
                        .collect::<Result<_, ConfigError>>()?,
                }
            }
        };
        Ok(ServerSpec {
            name: name.to_owned(),
            transport,
        })
    }

    /// The transport asked for, checking that its required field is there.
    fn kind(&self, name: &str) -> Result<Kind, ConfigError> {
        let kind = match self.kind.as_deref() {
            Some("stdio") => Kind::Stdio,
            Some("http" | "streamable-http") => Kind::Http,
            Some("sse") => {
                return Err(server_error(
                    name,
                    "type `sse` (the old HTTP+SSE transport) is not supported; if the server also \
                     speaks Streamable HTTP, use \"type\": \"http\" with that endpoint (often \
                     ending in /mcp)",
                ));
            }
            Some(other) => {
                return Err(server_error(
                    name,
                    &format!("unknown type `{other}` (expected `stdio` or `http`)"),
                ));
            }
            None => match (&self.command, &self.url) {
                (Some(_), Some(_)) => {
                    return Err(server_error(
                        name,
                        "has both `command` and `url`: set \"type\" to \"stdio\" or \"http\"",
                    ));
                }
                (Some(_), None) => Kind::Stdio,
                (None, Some(_)) => Kind::Http,
                (None, None) => {
                    return Err(server_error(
                        name,
                        "needs `command` (a local server) or `url` (a remote one)",
                    ));
                }
            },
        };
        match kind {
            Kind::Stdio if self.command.is_none() => {
                Err(server_error(name, "a stdio server needs `command`"))
            }
            Kind::Http if self.url.is_none() => {
                Err(server_error(name, "an HTTP server needs `url`"))
            }
            _ => Ok(kind),
        }
    }

    /// One `.mcp.json` entry: an object whose unknown keys are dropped.
    fn from_json(name: &str, value: &Value) -> Result<Self, ConfigError> {
        let Value::Object(fields) = value else {
            return Err(server_error(name, "the entry is not a JSON object"));
        };
        let known: Map<String, Value> = fields
            .iter()
            .filter(|(key, _)| ENTRY_KEYS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        serde_json::from_value(Value::Object(known)).map_err(|e| server_error(name, &e.to_string()))
    }
}

/// The servers of an `.mcp.json`, ordered by name, with `${VAR}` and `${VAR:-default}` expanded
/// through `lookup` in `command`, `args`, `env` values, `url` and `headers` values. A file
/// without `mcpServers` has no servers.
pub fn parse_mcp_json(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ServerSpec>, ConfigError> {
    let document = parse_document(Some(text))?;
    let Some(servers) = document.get(SERVERS_KEY) else {
        return Ok(Vec::new());
    };
    let Value::Object(servers) = servers else {
        return Err(ConfigError::Shape(format!(
            "`{SERVERS_KEY}` is not an object"
        )));
    };
    let mut specs = servers
        .iter()
        .map(|(name, value)| {
            validate_name(name)?;
            ServerEntry::from_json(name, value)?.resolve(name, lookup)
        })
        .collect::<Result<Vec<_>, _>>()?;
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(specs)
}

/// `.mcp.json` with the server `name` added (at the end of `mcpServers`) as `spec_json`, which
/// is checked for shape (variables are left as written); `json_text` `None` (or blank) starts a
/// new file. Every other server and key keeps its value and order.
pub fn add_server(
    json_text: Option<&str>,
    name: &str,
    spec_json: Value,
) -> Result<String, ConfigError> {
    validate_name(name)?;
    ServerEntry::from_json(name, &spec_json)?.kind(name)?;
    let mut document = parse_document(json_text)?;
    let servers = document
        .entry(SERVERS_KEY)
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(servers) = servers else {
        return Err(ConfigError::Shape(format!(
            "`{SERVERS_KEY}` is not an object"
        )));
    };
    if servers.contains_key(name) {
        return Err(ConfigError::Exists(name.to_owned()));
    }
    servers.insert(name.to_owned(), spec_json);
    render(document)
}

/// `.mcp.json` without the server `name`; every other server and key keeps its value and order.
pub fn remove_server(json_text: &str, name: &str) -> Result<String, ConfigError> {
    let mut document = parse_document(Some(json_text))?;
    let removed = match document.get_mut(SERVERS_KEY) {
        Some(Value::Object(servers)) => servers.shift_remove(name),
        Some(_) => {
            return Err(ConfigError::Shape(format!(
                "`{SERVERS_KEY}` is not an object"
            )));
        }
        None => None,
    };
    if removed.is_none() {
        return Err(ConfigError::NotFound(name.to_owned()));
    }
    render(document)
}

/// The longest tool name the model providers take (Anthropic's and OpenAI's limit), and the
/// characters they take: letters, digits, `_` and `-`.
pub const MAX_TOOL_NAME: usize = 64;
/// The longest server name: the rest of [`MAX_TOOL_NAME`] leaves room for a tool's name, or at
/// least the 8-character hash that stands for a long one.
pub const MAX_SERVER_NAME: usize = 40;

/// `mcp__<server>__<tool>`: the name the model sees for `tool` of `server`. A tool's name is
/// kept as the server gave it when providers take it; otherwise each character they refuse
/// becomes `_`, and a name past [`MAX_TOOL_NAME`] is cut and ends with `_` and 8 hex digits of a
/// hash of the server's own name, so two long names that start alike stay apart. The hub maps the
/// name back to the server's.
pub fn qualified(server: &str, tool: &str) -> String {
    let head = format!("{PREFIX}{server}{SEPARATOR}");
    let plain: String = tool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if head.len() + plain.len() <= MAX_TOOL_NAME && !plain.is_empty() {
        return head + &plain;
    }
    let hash = blake3::hash(tool.as_bytes()).to_hex();
    let room = MAX_TOOL_NAME.saturating_sub(head.len() + 9);
    // `plain` is ASCII, so any byte index is a character boundary.
    format!("{head}{}_{}", &plain[..room.min(plain.len())], &hash[..8])
}

/// The server and tool of a qualified name, or `None` when it is not one. The server is what
/// stands before the first `__` (server names cannot contain `__`); the tool is the rest.
pub fn split(qualified: &str) -> Option<(&str, &str)> {
    let rest = qualified.strip_prefix(PREFIX)?;
    let (server, tool) = rest.split_once(SEPARATOR)?;
    (validate_name(server).is_ok() && !tool.is_empty()).then_some((server, tool))
}

/// A server name: one to [`MAX_SERVER_NAME`] letters, digits, `-` and `_`, without `__`.
pub fn validate_name(name: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_SERVER_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.contains(SEPARATOR);
    if valid {
        Ok(())
    } else {
        Err(ConfigError::InvalidName(name.to_owned()))
    }
}

fn server_error(server: &str, message: &str) -> ConfigError {
    ConfigError::Server {
        server: server.to_owned(),
        message: message.to_owned(),
    }
}

/// The top-level object of an `.mcp.json` (empty for no text).
fn parse_document(text: Option<&str>) -> Result<Map<String, Value>, ConfigError> {
    let text = text.unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(document)) => Ok(document),
        Ok(_) => Err(ConfigError::Shape("the top level is not an object".into())),
        Err(e) => Err(ConfigError::Json(e.to_string())),
    }
}

/// Two-space pretty JSON with a final newline, as Claude Code writes it.
fn render(document: Map<String, Value>) -> Result<String, ConfigError> {
    let mut text = serde_json::to_string_pretty(&Value::Object(document))
        .map_err(|e| ConfigError::Json(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// `text` with every `${VAR}` and `${VAR:-default}` replaced. As in the shell, the default also
/// stands in for a variable that is set but empty. A `$` not followed by `{` is kept as is.
fn expand(
    text: &str,
    server: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(server_error(
                server,
                &format!("unterminated `${{` in `{text}`"),
            ));
        };
        let inner = &after[..end];
        let (var, default) = match inner.split_once(":-") {
            Some((var, default)) => (var, Some(default)),
            None => (inner, None),
        };
        let is_identifier = var
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_identifier {
            return Err(server_error(
                server,
                &format!("`${{{inner}}}` does not name a variable"),
            ));
        }
        match (lookup(var).filter(|value| !value.is_empty()), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            // Set but empty, with no default: the empty value is what the user has.
            (None, None) if lookup(var).is_some() => {}
            (None, None) => {
                return Err(ConfigError::UnsetVariable {
                    server: server.to_owned(),
                    var: var.to_owned(),
                });
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_providers_take_is_kept() {
        assert_eq!(qualified("git", "git_status"), "mcp__git__git_status");
        assert_eq!(split("mcp__git__git_status"), Some(("git", "git_status")));
    }

    #[test]
    fn characters_providers_refuse_become_underscores() {
        assert_eq!(qualified("fs", "read.file v2"), "mcp__fs__read_file_v2");
    }

    #[test]
    fn a_long_name_is_cut_to_64_with_a_hash_that_keeps_names_apart() {
        let server = "a".repeat(MAX_SERVER_NAME);
        let one = qualified(&server, &format!("{}_one", "t".repeat(60)));
        let two = qualified(&server, &format!("{}_two", "t".repeat(60)));
        assert_eq!(one.len(), MAX_TOOL_NAME);
        assert_eq!(two.len(), MAX_TOOL_NAME);
        assert_ne!(one, two);
        assert_eq!(split(&one).map(|(s, _)| s), Some(server.as_str()));
        let short = qualified("s", &"x".repeat(70));
        assert_eq!(short.len(), MAX_TOOL_NAME);
        assert!(
            short
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
    }

    #[test]
    fn a_server_name_too_long_for_the_limit_is_refused() {
        assert!(validate_name(&"s".repeat(MAX_SERVER_NAME)).is_ok());
        assert_eq!(
            validate_name(&"s".repeat(MAX_SERVER_NAME + 1)),
            Err(ConfigError::InvalidName("s".repeat(MAX_SERVER_NAME + 1)))
        );
    }
}
