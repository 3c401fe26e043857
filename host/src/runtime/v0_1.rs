//! Bindings for contract `cove:plugin@0.1.0` and the host side of its imports.
//!
//! Owns the generated types of this one contract version and how each host capability answers a
//! plugin: `log` to tracing, `search` to [`crate::search`], and `exec`/`ast` answered with an error
//! until their implementations land. Every capability checks the plugin's grants first. Must not
//! hold state across calls: a store lives for one call.

use super::StoreState;
use crate::search;

wasmtime::component::bindgen!({
    path: "../wit/v0.1",
    world: "cove:plugin/tool@0.1.0",
});

use self::cove::plugin::{ast, exec, log, search as wit_search, types};

impl types::Host for StoreState {}

impl log::Host for StoreState {
    fn log(&mut self, level: log::Level, message: String) {
        let plugin = &*self.host.plugin;
        let message = super::cut(&message, 4096);
        match level {
            log::Level::Trace => tracing::trace!(target: "cove::plugin", plugin, "{message}"),
            log::Level::Debug => tracing::debug!(target: "cove::plugin", plugin, "{message}"),
            log::Level::Info => tracing::info!(target: "cove::plugin", plugin, "{message}"),
            log::Level::Warn => tracing::warn!(target: "cove::plugin", plugin, "{message}"),
            log::Level::Error => tracing::error!(target: "cove::plugin", plugin, "{message}"),
        }
    }
}

impl wit_search::Host for StoreState {
    fn run(&mut self, req: wit_search::Request) -> Result<wit_search::Response, String> {
        if !self.host.grants.search {
            return Err(self.host.not_granted("search", "search = true"));
        }
        let Some(worktree) = &self.host.worktree else {
            return Err("this call has no worktree to search".into());
        };
        let req = search::Request {
            pattern: req.pattern,
            path: req.path,
            globs: req.globs,
            file_types: req.file_types,
            case_insensitive: req.case_insensitive,
            multiline: req.multiline,
            before_context: req.before_context,
            after_context: req.after_context,
            hidden: req.hidden,
            max_files: req.max_files,
            max_lines: req.max_lines,
            mode: match req.mode {
                wit_search::Mode::Files => search::Mode::Files,
                wit_search::Mode::FilesWithMatches => search::Mode::FilesWithMatches,
                wit_search::Mode::Content => search::Mode::Content,
                wit_search::Mode::Count => search::Mode::Count,
            },
        };
        let resp = search::run(worktree, &req).map_err(|e| e.to_string())?;
        Ok(wit_search::Response {
            files: resp
                .files
                .into_iter()
                .map(|f| wit_search::FileHit {
                    path: f.path,
                    mtime_ms: f.mtime_ms,
                    matches: f.matches,
                    lines: f
                        .lines
                        .into_iter()
                        .map(|l| wit_search::Line {
                            number: l.number,
                            text: l.text,
                            context: l.context,
                        })
                        .collect(),
                })
                .collect(),
            truncated: resp.truncated,
            errors: resp.errors,
        })
    }
}

const NOT_YET: &str = "is declared by contract 0.1.0 but not available in this build of cove yet";

impl exec::Host for StoreState {
    fn run(&mut self, _cmd: exec::Command) -> Result<exec::Outcome, String> {
        if !self.host.grants.exec {
            return Err(self.host.not_granted("exec", "exec = true"));
        }
        Err(format!("the exec capability {NOT_YET}"))
    }
}

impl ast::Host for StoreState {
    fn outline(&mut self, _path: String) -> Result<String, String> {
        Err(format!("the ast capability {NOT_YET}"))
    }
    fn query(&mut self, _path: String, _query: String) -> Result<Vec<ast::Capture>, String> {
        Err(format!("the ast capability {NOT_YET}"))
    }
}
