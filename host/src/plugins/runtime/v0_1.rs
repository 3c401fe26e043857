//! Bindings for contract `cove:plugin@0.1.0`, frozen as it shipped, so components built for it
//! keep loading.
//!
//! Owns the generated types of this version (its `tool`, `skill` and `policy` worlds) and their
//! conversion to and from the newest contract's types. Each host capability a 0.1 plugin calls is
//! converted up, answered by the newest version's implementation (`v0_2`), and its answer
//! converted back; a tool's answers are converted up for the rest of the host. Must not answer a
//! capability itself: one implementation per capability, in the newest version's module.

use super::StoreState;
use super::v0_2::cove::plugin as new;

wasmtime::component::bindgen!({
    path: "../wit/v0.1",
    world: "cove:plugin/tool@0.1.0",
});

use self::cove::plugin as old;

/// Bindings of the `policy` world, sharing the host's `log` with the tool world.
pub mod policy_world {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "cove:plugin/policy@0.1.0",
        with: { "cove:plugin/log": super::cove::plugin::log },
    });
}

/// Bindings of the `skill` world: the same imports as the tool world (shared, so the host side
/// below serves both), plus `skill-api`.
pub mod skill_world {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "cove:plugin/skill@0.1.0",
        with: {
            "cove:plugin/types": super::cove::plugin::types,
            "cove:plugin/log": super::cove::plugin::log,
            "cove:plugin/search": super::cove::plugin::search,
            "cove:plugin/exec": super::cove::plugin::exec,
            "cove:plugin/ast": super::cove::plugin::ast,
            "cove:plugin/memory": super::cove::plugin::memory,
        },
    });
}

/// A value of one contract version as the same value of another.
pub(super) trait Conv<T> {
    fn conv(self) -> T;
}

macro_rules! same {
    ($($t:ty),*) => { $(impl Conv<$t> for $t { fn conv(self) -> $t { self } })* };
}
same!(String, bool, u32, u64, i32);

impl<A: Conv<B>, B> Conv<Vec<B>> for Vec<A> {
    fn conv(self) -> Vec<B> {
        self.into_iter().map(Conv::conv).collect()
    }
}

impl<A: Conv<B>, B> Conv<Option<B>> for Option<A> {
    fn conv(self) -> Option<B> {
        self.map(Conv::conv)
    }
}

impl<A: Conv<B>, B> Conv<Result<B, String>> for Result<A, String> {
    fn conv(self) -> Result<B, String> {
        self.map(Conv::conv)
    }
}

impl<A: Conv<C>, B: Conv<D>, C, D> Conv<(C, D)> for (A, B) {
    fn conv(self) -> (C, D) {
        (self.0.conv(), self.1.conv())
    }
}

/// A record whose fields are the same in both versions, converted either way.
macro_rules! record {
    ($iface:ident :: $t:ident { $($f:ident),* $(,)? }) => {
        impl Conv<new::$iface::$t> for old::$iface::$t {
            fn conv(self) -> new::$iface::$t {
                new::$iface::$t { $($f: self.$f.conv()),* }
            }
        }
        impl Conv<old::$iface::$t> for new::$iface::$t {
            fn conv(self) -> old::$iface::$t {
                old::$iface::$t { $($f: self.$f.conv()),* }
            }
        }
    };
}

/// An enum whose cases are the same in both versions, converted either way.
macro_rules! cases {
    ($iface:ident :: $t:ident { $($v:ident),* $(,)? }) => {
        impl Conv<new::$iface::$t> for old::$iface::$t {
            fn conv(self) -> new::$iface::$t {
                match self { $(old::$iface::$t::$v => new::$iface::$t::$v),* }
            }
        }
        impl Conv<old::$iface::$t> for new::$iface::$t {
            fn conv(self) -> old::$iface::$t {
                match self { $(new::$iface::$t::$v => old::$iface::$t::$v),* }
            }
        }
    };
}

cases!(log::Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error
});
cases!(search::Mode {
    Files,
    FilesWithMatches,
    Content,
    Count
});
record!(search::Request {
    mode,
    pattern,
    path,
    globs,
    file_types,
    case_insensitive,
    multiline,
    before_context,
    after_context,
    hidden,
    max_files,
    max_lines,
});
record!(search::Line {
    number,
    text,
    context
});
record!(search::FileHit {
    path,
    mtime_ms,
    matches,
    lines
});
record!(search::Response {
    files,
    truncated,
    errors
});
record!(exec::Command {
    argv,
    cwd,
    env,
    stdin,
    timeout_ms
});
record!(exec::Outcome {
    exit_code,
    stdout,
    stderr,
    timed_out,
    truncated
});
record!(ast::Symbol {
    kind,
    name,
    start_line,
    end_line,
    signature,
    depth
});
record!(ast::FileSymbols {
    path,
    language,
    supported,
    symbols,
    lines,
    syntax_errors,
    error_lines,
    binary,
});
record!(ast::FindRequest {
    name,
    kind,
    path,
    references,
    max_results
});
record!(ast::Definition {
    path,
    parent,
    symbol
});
record!(ast::Reference { path, line, text });
record!(ast::FindResponse {
    definitions,
    references,
    files_parsed,
    truncated,
    errors,
});
cases!(memory::Scope { Project, User });

/// 0.1's captures have no columns.
impl Conv<old::ast::Capture> for new::ast::Capture {
    fn conv(self) -> old::ast::Capture {
        old::ast::Capture {
            name: self.name,
            text: self.text,
            start_line: self.start_line,
            end_line: self.end_line,
        }
    }
}

impl old::types::Host for StoreState {}

impl old::log::Host for StoreState {
    fn log(&mut self, level: old::log::Level, message: String) {
        new::log::Host::log(self, level.conv(), message);
    }
}

impl old::search::Host for StoreState {
    fn run(&mut self, req: old::search::Request) -> Result<old::search::Response, String> {
        new::search::Host::run(self, req.conv()).conv()
    }
}

impl old::exec::Host for StoreState {
    fn run(&mut self, cmd: old::exec::Command) -> Result<old::exec::Outcome, String> {
        new::exec::Host::run(self, cmd.conv()).conv()
    }

    fn session_cwd(&mut self) -> String {
        new::exec::Host::session_cwd(self)
    }

    fn set_session_cwd(&mut self, path: String) -> Result<String, String> {
        new::exec::Host::set_session_cwd(self, path)
    }
}

impl old::ast::Host for StoreState {
    fn outline(&mut self, path: String) -> Result<String, String> {
        new::ast::Host::outline(self, path)
    }

    fn query(&mut self, path: String, query: String) -> Result<Vec<old::ast::Capture>, String> {
        new::ast::Host::query(self, path, query).conv()
    }

    fn symbols(&mut self, path: String) -> Result<old::ast::FileSymbols, String> {
        new::ast::Host::symbols(self, path).conv()
    }

    fn find(&mut self, req: old::ast::FindRequest) -> Result<old::ast::FindResponse, String> {
        new::ast::Host::find(self, req.conv()).conv()
    }
}

impl old::memory::Host for StoreState {
    fn remember(&mut self, fact: String, scope: old::memory::Scope) -> Result<String, String> {
        new::memory::Host::remember(self, fact, scope.conv())
    }
}

/// What a 0.1 tool describes, as the newest contract says it: no output schema.
pub(super) fn spec(s: old::types::ToolSpec) -> new::types::ToolSpec {
    new::types::ToolSpec {
        name: s.name,
        description: s.description,
        input_schema: s.input_schema,
        output_schema: None,
        read_only: s.read_only,
    }
}

/// A 0.1 tool's answer, as the newest contract says it: text only.
pub(super) fn answer(
    a: Result<String, old::types::ToolError>,
) -> Result<new::types::ToolOutput, new::types::ToolError> {
    use new::types::ToolError as N;
    use old::types::ToolError as O;
    match a {
        Ok(text) => Ok(new::types::ToolOutput {
            text,
            structured: None,
        }),
        Err(O::InvalidInput(m)) => Err(N::InvalidInput(m)),
        Err(O::UnknownTool(m)) => Err(N::UnknownTool(m)),
        Err(O::Denied(m)) => Err(N::Denied(m)),
        Err(O::Failed(m)) => Err(N::Failed(m)),
    }
}

/// A policy request as 0.1 spells it.
impl Conv<policy_world::exports::cove::plugin::policy_api::Request>
    for super::v0_2::policy_world::exports::cove::plugin::policy_api::Request
{
    fn conv(self) -> policy_world::exports::cove::plugin::policy_api::Request {
        use policy_world::exports::cove::plugin::policy_api as o;
        o::Request {
            tool: self.tool,
            plugin: self.plugin,
            input: self.input,
            read_only: self.read_only,
            role: self.role,
            budget: o::Budget {
                turns_left: self.budget.turns_left,
                tokens_left: self.budget.tokens_left,
            },
        }
    }
}

/// A 0.1 policy's verdict, as the newest contract says it.
impl Conv<super::v0_2::policy_world::exports::cove::plugin::policy_api::Verdict>
    for policy_world::exports::cove::plugin::policy_api::Verdict
{
    fn conv(self) -> super::v0_2::policy_world::exports::cove::plugin::policy_api::Verdict {
        use super::v0_2::policy_world::exports::cove::plugin::policy_api::Verdict as N;
        match self {
            Self::Allow => N::Allow,
            Self::Deny(m) => N::Deny(m),
            Self::Ask(m) => N::Ask(m),
        }
    }
}
