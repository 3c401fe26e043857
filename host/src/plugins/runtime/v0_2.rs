//! Bindings for contract `cove:plugin@0.2.0`, the newest, and the host side of its imports.
//!
//! Owns the generated types of this contract version (the `tool`, `skill` and `policy` worlds,
//! sharing one set of imports) and how each host capability answers a plugin: `log` to tracing,
//! `progress` to the call's progress sink, `search` to [`crate::capabilities::search`], `exec`
//! to [`crate::sandbox`], `memory` to [`crate::capabilities::memory`] and `ast` to
//! [`crate::capabilities::ast`]. Every capability checks the plugin's grants first. Older
//! contracts' bindings (`v0_1`) convert to these types and call these implementations, so each
//! capability is answered in one place. Must not hold state across calls: a store lives for one
//! call (the parse cache lives in the capability, keyed by content, not here).

use super::StoreState;
use crate::capabilities::{ast as code, search};

wasmtime::component::bindgen!({
    path: "../wit/v0.2",
    world: "cove:plugin/tool@0.2.0",
});

use self::cove::plugin::{ast, exec, log, memory, progress, search as wit_search, types};

/// Bindings of the `policy` world, sharing the host's `log` with the tool world.
pub mod policy_world {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2",
        world: "cove:plugin/policy@0.2.0",
        with: { "cove:plugin/log": super::cove::plugin::log },
    });
}

/// Bindings of the `skill` world: the same imports as the tool world (shared, so the host side
/// below serves both), plus `skill-api`.
pub mod skill_world {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2",
        world: "cove:plugin/skill@0.2.0",
        with: {
            "cove:plugin/types": super::cove::plugin::types,
            "cove:plugin/log": super::cove::plugin::log,
            "cove:plugin/progress": super::cove::plugin::progress,
            "cove:plugin/search": super::cove::plugin::search,
            "cove:plugin/exec": super::cove::plugin::exec,
            "cove:plugin/ast": super::cove::plugin::ast,
            "cove:plugin/memory": super::cove::plugin::memory,
        },
    });
}

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

impl progress::Host for StoreState {
    fn report(&mut self, done: u64, total: Option<u64>, message: String) {
        if let Some(sink) = &self.host.progress {
            sink.report(super::Progress {
                done,
                total,
                message: super::cut(&message, 200).into_owned(),
            });
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

/// Longest a command may run, whatever it asks for.
const MAX_EXEC: std::time::Duration = std::time::Duration::from_secs(600);

impl exec::Host for StoreState {
    fn run(&mut self, cmd: exec::Command) -> Result<exec::Outcome, String> {
        if !self.host.grants.exec {
            return Err(self.host.not_granted("exec", "exec = true"));
        }
        let Some(worktree) = &self.host.worktree else {
            return Err("this call has no worktree to run in".into());
        };
        let rel = if cmd.cwd.is_empty() {
            let mut session = self
                .host
                .session_cwd
                .lock()
                .map_err(|_| "session state poisoned".to_string())?;
            // A directory removed since falls back to the worktree's root.
            if !(session.as_os_str().is_empty() || worktree.dir().is_dir(&*session)) {
                *session = std::path::PathBuf::new();
            }
            session.clone()
        } else {
            worktree
                .relative(&cmd.cwd)
                .ok_or_else(|| format!("working directory `{}` is outside the worktree", cmd.cwd))?
        };
        let cwd = worktree.root().join(&rel);
        // Through cap-std: a link that leaves the worktree is not a directory here.
        if !(rel.as_os_str().is_empty() || worktree.dir().is_dir(&rel)) {
            return Err(format!(
                "working directory `{}` is not a directory inside the worktree",
                cmd.cwd
            ));
        }
        let tmp = crate::sandbox::PrivateTmp::new("exec")
            .map_err(|e| format!("cannot make a private tmp directory: {e}"))?;
        let deny = crate::sandbox::default_deny();
        let timeout = std::time::Duration::from_millis(u64::from(cmd.timeout_ms)).min(MAX_EXEC);
        let spec = crate::sandbox::Spec {
            argv: cmd.argv,
            cwd,
            worktree: worktree.root().to_path_buf(),
            tmp: tmp.path().to_path_buf(),
            net: !self.host.grants.net.is_empty(),
            deny,
            max_procs: 512,
            max_file_bytes: 1 << 30,
            cpu_secs: timeout.as_secs() + 5,
            memory_bytes: self.host.commands.memory_bytes,
            disk_bytes: self.host.commands.disk_bytes,
            env: self.host.grants.env.clone(),
            unsandboxed: crate::sandbox::unsandboxed(),
        };
        for (k, v) in &cmd.env {
            if crate::sandbox::ENV_ALLOW.contains(&k.as_str()) || k.starts_with("COVE_") {
                continue;
            }
            tracing::debug!(
                plugin = &*self.host.plugin,
                "extra env {k}={v} is not passed on"
            );
        }
        let result = crate::sandbox::run(
            &spec,
            cmd.stdin.as_deref(),
            timeout,
            self.host.cancel.as_ref(),
        );
        drop(tmp);
        let mut out = result.map_err(|e| e.to_string())?;
        // The contract has no field for it: the reason goes at the end of stderr.
        if let Some(why) = out.stopped.take() {
            if !out.stderr.is_empty() && !out.stderr.ends_with('\n') {
                out.stderr.push('\n');
            }
            out.stderr.push_str(&why);
        }
        Ok(exec::Outcome {
            exit_code: out.exit_code,
            stdout: out.stdout,
            stderr: out.stderr,
            timed_out: out.timed_out,
            truncated: out.truncated,
        })
    }
    fn session_cwd(&mut self) -> String {
        self.host
            .session_cwd
            .lock()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn set_session_cwd(&mut self, path: String) -> Result<String, String> {
        let Some(worktree) = &self.host.worktree else {
            return Err("this call has no worktree".into());
        };
        let rel = worktree.relative(&path).ok_or_else(|| {
            format!("`{path}` is outside the worktree; the working directory stays where it was")
        })?;
        if !(rel.as_os_str().is_empty() || worktree.dir().is_dir(&rel)) {
            return Err(format!(
                "`{path}` is not a directory inside the worktree; the working directory stays where it was"
            ));
        }
        let shown = rel.to_string_lossy().into_owned();
        *self
            .host
            .session_cwd
            .lock()
            .map_err(|_| "session state poisoned".to_string())? = rel;
        Ok(shown)
    }
}

impl StoreState {
    /// The worktree for an `ast` call, once the grant is checked.
    fn ast_worktree(&self) -> Result<&crate::worktree::Worktree, String> {
        if !self.host.grants.ast {
            return Err(self.host.not_granted("ast", "ast = true"));
        }
        self.host
            .worktree
            .as_deref()
            .ok_or_else(|| "this call has no worktree to parse".to_string())
    }
}

fn wit_symbol(s: &code::Symbol, depth: u32) -> ast::Symbol {
    ast::Symbol {
        kind: s.kind.as_str().to_string(),
        name: s.name.clone(),
        start_line: s.start_line,
        end_line: s.end_line,
        signature: s.signature.clone(),
        depth,
    }
}

/// A tree of symbols as the contract's flat list, parents before members.
fn flatten(symbols: &[code::Symbol], depth: u32, out: &mut Vec<ast::Symbol>) {
    for s in symbols {
        out.push(wit_symbol(s, depth));
        flatten(&s.children, depth + 1, out);
    }
}

impl ast::Host for StoreState {
    fn outline(&mut self, path: String) -> Result<String, String> {
        let wt = self.ast_worktree()?;
        code::outline(wt, &path).map_err(|e| e.to_string())
    }

    fn query(&mut self, path: String, query: String) -> Result<Vec<ast::Capture>, String> {
        let wt = self.ast_worktree()?;
        let captures = code::query(wt, &path, &query).map_err(|e| e.to_string())?;
        Ok(captures
            .into_iter()
            .map(|c| ast::Capture {
                name: c.name,
                text: c.text,
                start_line: c.start_line,
                end_line: c.end_line,
                start_column: c.start_column,
                end_column: c.end_column,
            })
            .collect())
    }

    fn symbols(&mut self, path: String) -> Result<ast::FileSymbols, String> {
        let wt = self.ast_worktree()?;
        let file = code::symbols(wt, &path).map_err(|e| e.to_string())?;
        let mut symbols = Vec::new();
        flatten(&file.symbols, 0, &mut symbols);
        Ok(ast::FileSymbols {
            path: file.path,
            language: file.lang.map(|l| l.name().to_string()),
            supported: code::SUPPORTED.to_string(),
            symbols,
            lines: file.lines,
            syntax_errors: file.syntax_errors,
            error_lines: file.error_lines,
            binary: file.binary,
        })
    }

    fn find(&mut self, req: ast::FindRequest) -> Result<ast::FindResponse, String> {
        let wt = self.ast_worktree()?;
        let req = code::FindRequest {
            name: req.name,
            kind: Some(req.kind).filter(|k| !k.is_empty()),
            path: req.path,
            references: req.references,
            max_results: req.max_results,
            cancel: self.host.cancel.clone(),
        };
        let found = code::find(wt, &req).map_err(|e| e.to_string())?;
        Ok(ast::FindResponse {
            definitions: found
                .definitions
                .iter()
                .map(|d| ast::Definition {
                    path: d.path.clone(),
                    parent: d.parent.clone(),
                    symbol: wit_symbol(&d.symbol, d.depth),
                })
                .collect(),
            references: found
                .references
                .into_iter()
                .map(|r| ast::Reference {
                    path: r.path,
                    line: r.line,
                    text: r.text,
                })
                .collect(),
            files_parsed: found.files_parsed,
            truncated: found.truncated,
            errors: found.errors,
        })
    }
}

impl memory::Host for StoreState {
    fn remember(&mut self, fact: String, scope: memory::Scope) -> Result<String, String> {
        use crate::capabilities::memory::{Remembered, Scope, remember};
        if !self.host.grants.memory {
            return Err(format!(
                "plugin `{}` was not granted the `memory` capability: only built-in plugins may write the memory store",
                self.host.plugin
            ));
        }
        let root = self
            .host
            .worktree
            .as_ref()
            .map(|w| w.root().to_path_buf())
            .ok_or("this call has no worktree to remember for")?;
        let scope = match scope {
            memory::Scope::Project => Scope::Project,
            memory::Scope::User => Scope::User,
        };
        let user_dir = crate::paths::config_dir();
        match remember(scope, &fact, &root, user_dir.as_deref()) {
            Ok(Remembered::Added(path)) => Ok(format!(
                "Remembered in {}; it is read at the start of every later session.",
                path.display()
            )),
            Ok(Remembered::Already(path)) => Ok(format!(
                "{} already holds that fact; nothing was written.",
                path.display()
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}
