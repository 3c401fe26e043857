//! `outline` and `find_symbol` (the `code` plugin over the host's `ast` capability): every
//! language's outline on a real-looking file, a name across a tree with an ignored folder,
//! references, answers for unknown languages and broken files, and the worktree's walls.

use crate::support::{OLD_MANIFEST, Sandbox, TestResult, guest};
use serde_json::json;

fn outline(sb: &Sandbox, path: &str) -> Result<String, Box<dyn std::error::Error>> {
    Ok(sb
        .call("outline", &json!({ "file_path": path }).to_string())?
        .out()
        .to_string())
}

fn find(sb: &Sandbox, input: serde_json::Value) -> Result<String, Box<dyn std::error::Error>> {
    Ok(sb
        .call("find_symbol", &input.to_string())?
        .out()
        .to_string())
}

/// Every line in `want` is a line of `got`, in this order.
#[track_caller]
fn assert_lines(got: &str, want: &[&str]) {
    let lines: Vec<&str> = got.lines().collect();
    let mut at = 0;
    for w in want {
        match lines[at..].iter().position(|l| l == w) {
            Some(i) => at += i + 1,
            None => panic!("missing (or out of order) line {w:?} in:\n{got}"),
        }
    }
}

const RUST: &str = r#"//! A tiny tokenizer.
use std::fmt;

pub const MAX_DEPTH: usize = 64;

/// A token.
#[derive(Debug, Clone)]
pub enum Token {
    Word(String),
    Number(i64),
}

pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Self { src, pos: 0 }
    }

    fn next_token(&mut self) -> Option<Token> {
        let rest = &self.src[self.pos..];
        let helper = |c: char| c.is_whitespace();
        rest.find(helper).map(|_| Token::Word(String::new()))
    }
}

pub trait Visit {
    fn visit(&mut self, token: &Token);
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token")
    }
}

mod tests {
    fn helper() {}
}
"#;

const PYTHON: &str = r#""""Inventory service."""
import os
from dataclasses import dataclass

DEFAULT_LIMIT = 100


@dataclass
class Item:
    name: str
    count: int = 0

    def total(self, price: float) -> float:
        return self.count * price


class Store:
    def __init__(self, path):
        self.path = path

    @property
    def items(self):
        def local():
            pass
        return []


async def load(path: str) -> "Store":
    return Store(path)
"#;

const JAVASCRIPT: &str = r#"import { readFile } from "fs";

export const VERSION = "1.2.0";

export function parse(text, options = {}) {
  const inner = () => 1;
  return text.split("\n");
}

const render = (rows) => rows.join(",");

class Table {
  constructor(rows) {
    this.rows = rows;
  }

  size() {
    return this.rows.length;
  }
}

module.exports = { parse, render, Table };
"#;

const TYPESCRIPT: &str = r#"export interface User {
  id: number;
  name: string;
  greet(other: User): string;
}

export type Id = string | number;

export enum Role {
  Admin,
  Guest,
}

export class Repo<T> {
  private items: T[] = [];

  add(item: T): void {
    this.items.push(item);
  }
}

export function findUser(repo: Repo<User>, id: Id): User | undefined {
  return undefined;
}
"#;

const GO: &str = r#"package server

import (
	"fmt"
	"net/http"
)

const DefaultPort = 8080

type Handler interface {
	Serve(w http.ResponseWriter, r *http.Request)
}

type Server struct {
	Addr string
}

func NewServer(addr string) *Server {
	return &Server{Addr: addr}
}

func (s *Server) Start() error {
	fmt.Println("listening on", s.Addr)
	return nil
}
"#;

const C: &str = r#"#include <stdio.h>
#include <stdlib.h>

#define BUF_SIZE 256
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static int helper(int x);

typedef struct {
    int x;
    int y;
} point;

struct list {
    struct list *next;
    int value;
};

int add(int a, int b) {
    return a + b;
}

static int helper(int x) {
    return x * 2;
}

int main(int argc, char **argv) {
    printf("%d\n", add(1, helper(2)));
    return 0;
}
"#;

const CPP: &str = r#"#include <string>
#include <vector>

namespace geo {

class Shape {
public:
    virtual ~Shape() = default;
    virtual double area() const = 0;
};

class Circle : public Shape {
public:
    explicit Circle(double r) : r_(r) {}
    double area() const override;

private:
    double r_;
};

double Circle::area() const {
    return 3.14159 * r_ * r_;
}

template <typename T>
T largest(const std::vector<T>& xs) {
    return xs.front();
}

}  // namespace geo
"#;

const JAVA: &str = r#"package com.example.shop;

import java.util.ArrayList;
import java.util.List;

public class Cart {
    public static final int MAX_ITEMS = 50;

    private final List<String> items = new ArrayList<>();

    public Cart() {}

    @Override
    public String toString() {
        return "Cart" + items;
    }

    public boolean add(String item) {
        return items.add(item);
    }

    interface Listener {
        void changed(Cart cart);
    }
}
"#;

#[test]
fn outline_of_every_language() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("src/lexer.rs", RUST)?;
    sb.write("app/store.py", PYTHON)?;
    sb.write("web/table.js", JAVASCRIPT)?;
    sb.write("web/repo.ts", TYPESCRIPT)?;
    sb.write("server/server.go", GO)?;
    sb.write("c/main.c", C)?;
    sb.write("cpp/shape.cpp", CPP)?;
    sb.write("java/Cart.java", JAVA)?;

    let rust = outline(&sb, "src/lexer.rs")?;
    assert_lines(
        &rust,
        &[
            "src/lexer.rs (rust, 42 lines, 12 definitions)",
            "4-4 pub const MAX_DEPTH: usize = 64",
            "8-11 pub enum Token",
            "13-16 pub struct Lexer<'a>",
            "18-28 impl<'a> Lexer<'a>",
            "  19-21 pub fn new(src: &'a str) -> Self",
            "  23-27 fn next_token(&mut self) -> Option<Token>",
            "30-32 pub trait Visit",
            "  31-31 fn visit(&mut self, token: &Token)",
            "34-38 impl fmt::Display for Token",
            "  35-37 fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result",
            "40-42 mod tests",
            "  41-41 fn helper()",
        ],
    );
    assert!(!rust.contains("let helper"), "locals stay out:\n{rust}");

    let py = outline(&sb, "app/store.py")?;
    assert_lines(
        &py,
        &[
            "app/store.py (python, 29 lines, 7 definitions)",
            "5-5 DEFAULT_LIMIT = 100",
            "9-14 class Item",
            "  13-14 def total(self, price: float) -> float",
            "17-25 class Store",
            "  18-19 def __init__(self, path)",
            "  22-25 def items(self)",
            "28-29 async def load(path: str) -> \"Store\"",
        ],
    );
    assert!(!py.contains("local"), "nested functions stay out:\n{py}");

    let js = outline(&sb, "web/table.js")?;
    assert_lines(
        &js,
        &[
            "3-3 export const VERSION = \"1.2.0\"",
            "5-8 export function parse(text, options = {})",
            "10-10 const render = (rows) =>",
            "12-20 class Table",
            "  13-15 constructor(rows)",
            "  17-19 size()",
        ],
    );
    assert!(js.starts_with("web/table.js (javascript, "), "{js}");
    assert!(!js.contains("inner"), "{js}");

    let ts = outline(&sb, "web/repo.ts")?;
    assert_lines(
        &ts,
        &[
            "1-5 export interface User",
            "  4-4 greet(other: User): string",
            "7-7 export type Id = string | number",
            "9-12 export enum Role",
            "14-20 export class Repo<T>",
            "  17-19 add(item: T): void",
            "22-24 export function findUser(repo: Repo<User>, id: Id): User | undefined",
        ],
    );
    assert!(ts.starts_with("web/repo.ts (typescript, "), "{ts}");

    let go = outline(&sb, "server/server.go")?;
    assert_lines(
        &go,
        &[
            "8-8 const DefaultPort = 8080",
            "10-12 type Handler interface {…}",
            "  11-11 Serve(w http.ResponseWriter, r *http.Request)",
            "14-16 type Server struct {…}",
            "18-20 func NewServer(addr string) *Server",
            "22-25 func (s *Server) Start() error",
        ],
    );
    assert!(go.starts_with("server/server.go (go, "), "{go}");

    let c = outline(&sb, "c/main.c")?;
    assert_lines(
        &c,
        &[
            "4-4 #define BUF_SIZE 256",
            "5-5 #define MAX(a, b) ((a) > (b) ? (a) : (b))",
            "9-12 typedef struct point",
            "14-17 struct list",
            "19-21 int add(int a, int b)",
            "23-25 static int helper(int x)",
            "27-30 int main(int argc, char **argv)",
        ],
    );
    assert_eq!(
        c.matches("helper").count(),
        1,
        "the prototype of a function defined below is left out:\n{c}"
    );

    let cpp = outline(&sb, "cpp/shape.cpp")?;
    assert_lines(
        &cpp,
        &[
            "4-30 namespace geo",
            "  6-10 class Shape",
            "    8-8 virtual ~Shape() = default",
            "    9-9 virtual double area() const = 0",
            "  12-19 class Circle : public Shape",
            "    14-14 explicit Circle(double r) : r_(r)",
            "    15-15 double area() const override",
            "  21-23 double Circle::area() const",
        ],
    );
    assert!(
        cpp.contains("\n  26-28 T largest(const std::vector<T>& xs)\n"),
        "{cpp}"
    );

    let java = outline(&sb, "java/Cart.java")?;
    assert_lines(
        &java,
        &[
            "6-25 public class Cart",
            "  7-7 public static final int MAX_ITEMS = 50",
            "  11-11 public Cart()",
            "  13-16 public String toString()",
            "  18-20 public boolean add(String item)",
            "  22-24 interface Listener",
            "    23-23 void changed(Cart cart)",
        ],
    );
    assert!(
        !java.contains("items = new"),
        "plain fields stay out:\n{java}"
    );
    Ok(())
}

/// A tree with one name defined in several languages, an ignored build folder and a hidden one.
fn tree() -> Result<Sandbox, Box<dyn std::error::Error>> {
    let sb = Sandbox::new()?;
    sb.write(".gitignore", "build/\n")?;
    sb.write(
        "src/engine.rs",
        "pub struct Engine;\n\nimpl Engine {\n    pub fn compute(&self, x: i32) -> i32 {\n        x * 2\n    }\n}\n",
    )?;
    sb.write(
        "src/main.rs",
        "mod engine;\n\nfn compute() -> i32 {\n    1\n}\n\nfn main() {\n    let e = engine::Engine;\n    println!(\"{}\", e.compute(compute()));\n    // compute in a comment is no reference\n}\n",
    )?;
    sb.write(
        "tools/compute.py",
        "class compute:\n    pass\n\n\ndef run():\n    return compute()\n",
    )?;
    sb.write("build/gen.rs", "pub fn compute() {}\n")?;
    sb.write(".cache/old.rs", "pub fn compute() {}\n")?;
    sb.write(
        "docs/compute.md",
        "# compute\nfn compute() is documented here\n",
    )?;
    Ok(sb)
}

#[test]
fn find_symbol_honours_gitignore_and_kinds() -> TestResult {
    let sb = tree()?;
    let out = find(&sb, json!({"name": "compute"}))?;
    assert_lines(
        &out,
        &[
            "Definitions of `compute`:",
            "src/engine.rs:4-6 in Engine: pub fn compute(&self, x: i32) -> i32",
            "src/main.rs:3-5 fn compute() -> i32",
            "tools/compute.py:1-2 class compute",
        ],
    );
    for hidden in ["build/", ".cache/", "docs/"] {
        assert!(
            !out.contains(hidden),
            "{hidden} must not be searched:\n{out}"
        );
    }

    let methods = find(&sb, json!({"name": "compute", "kind": "method"}))?;
    assert!(methods.contains("src/engine.rs:4-6"), "{methods}");
    assert!(
        !methods.contains("src/main.rs") && !methods.contains("compute.py"),
        "{methods}"
    );
    let classes = find(&sb, json!({"name": "compute", "kind": "class"}))?;
    assert!(
        classes.contains("tools/compute.py:1-2") && !classes.contains(".rs"),
        "{classes}"
    );
    let under = find(&sb, json!({"name": "compute", "path": "tools"}))?;
    assert!(
        under.contains("tools/compute.py") && !under.contains("src/"),
        "{under}"
    );
    let none = find(&sb, json!({"name": "nothing_is_called_this"}))?;
    assert!(
        none.starts_with("No definition of `nothing_is_called_this`"),
        "{none}"
    );

    let bad = sb.call(
        "find_symbol",
        &json!({"name": "compute", "kind": "gadget"}).to_string(),
    )?;
    assert!(
        bad.err().contains("unknown kind `gadget`"),
        "{}",
        bad.stderr
    );
    Ok(())
}

#[test]
fn find_symbol_lists_references_with_lines() -> TestResult {
    let sb = tree()?;
    let out = find(&sb, json!({"name": "compute", "references": true}))?;
    assert_lines(
        &out,
        &[
            "References (2):",
            "src/main.rs:9: println!(\"{}\", e.compute(compute()));",
            "tools/compute.py:6: return compute()",
        ],
    );
    assert!(!out.contains("comment is no reference"), "{out}");
    assert!(
        !out.contains("src/main.rs:3:"),
        "the definition is no reference:\n{out}"
    );
    Ok(())
}

#[test]
fn unknown_languages_and_broken_files_are_answers() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("notes.md", "# Notes\nfn main() {}\n")?;
    sb.write("Makefile", "all:\n\tcc main.c\n")?;
    sb.write("blob.rs", b"fn a() {}\0\x01\x02binary")?;
    sb.write(
        "broken.py",
        "def ok(a):\n    return a\n\ndef broken(:\n    pass\n\nclass Later:\n    def method(self):\n        return 1\n",
    )?;
    sb.write("empty.go", "")?;

    let md = outline(&sb, "notes.md")?;
    assert!(md.starts_with("notes.md: no outline: no grammar"), "{md}");
    assert!(
        md.contains("Rust, Python"),
        "it says what it can parse:\n{md}"
    );
    let make = outline(&sb, "Makefile")?;
    assert!(make.contains("no outline"), "{make}");
    let blob = outline(&sb, "blob.rs")?;
    assert!(blob.contains("not a text file"), "{blob}");

    let broken = outline(&sb, "broken.py")?;
    assert!(broken.contains("syntax error"), "{broken}");
    assert!(broken.contains("near line 4"), "{broken}");
    assert!(
        broken.contains("1-2 def ok(a)"),
        "what parsed is still there:\n{broken}"
    );
    assert!(broken.contains("class Later"), "{broken}");

    let empty = outline(&sb, "empty.go")?;
    assert!(empty.contains("(no definitions)"), "{empty}");

    // find_symbol over all of them finishes and finds what parsed.
    let found = find(&sb, json!({"name": "ok"}))?;
    assert!(found.contains("broken.py:1-2 def ok(a)"), "{found}");

    // A missing file is an error the model can act on, not a crash.
    let missing = sb.call("outline", &json!({"file_path": "nope.rs"}).to_string())?;
    assert!(missing.err().contains("nope.rs"), "{}", missing.stderr);
    Ok(())
}

#[test]
fn the_tools_see_only_the_worktree() -> TestResult {
    let sb = Sandbox::new()?;
    let outside = sb.outside();
    std::fs::write(outside.join("secret.rs"), "pub fn leaked_secret() {}\n")?;
    std::fs::write(outside.join("dir/inner.rs"), "pub fn leaked_secret() {}\n")?;
    sb.write("src/lib.rs", "pub fn inside() {}\n// leaked_secret\n")?;
    std::os::unix::fs::symlink(outside.join("secret.rs"), sb.repo().join("src/link.rs"))?;
    std::os::unix::fs::symlink(outside.join("dir"), sb.repo().join("vendor"))?;
    std::os::unix::fs::symlink("../../outside/secret.rs", sb.repo().join("rel.rs"))?;

    for path in [
        "src/link.rs".to_string(),
        "rel.rs".to_string(),
        "vendor/inner.rs".to_string(),
        outside.join("secret.rs").to_string_lossy().into_owned(),
        "../outside/secret.rs".to_string(),
    ] {
        let run = sb.call("outline", &json!({ "file_path": path }).to_string())?;
        let err = run.err();
        assert!(err.contains("outside the worktree"), "{path}: {err}");
        assert!(!err.contains("leaked_secret"), "{path}: {err}");
        assert!(
            !run.stdout.contains("leaked_secret"),
            "{path}: {}",
            run.stdout
        );
    }

    let found = find(&sb, json!({"name": "leaked_secret", "references": true}))?;
    assert!(
        found.starts_with("No definition of `leaked_secret`"),
        "links out of the worktree are not followed:\n{found}"
    );
    for path in [
        outside.to_string_lossy().into_owned(),
        "vendor".to_string(),
        "..".to_string(),
    ] {
        let run = sb.call(
            "find_symbol",
            &json!({"name": "leaked_secret", "path": path}).to_string(),
        )?;
        assert!(!run.ok, "{path}: {}", run.stdout);
        assert!(!run.stdout.contains("leaked_secret("), "{path}");
    }
    Ok(())
}

#[test]
fn a_component_built_against_the_first_ast_interface_still_links() -> TestResult {
    let sb = Sandbox::new()?;
    sb.write("src/lib.rs", "pub fn one() {}\n\npub struct Two;\n")?;
    sb.add_plugin("old", OLD_MANIFEST, &guest("oldast"))?;
    sb.trust()?;
    let out = sb
        .call(
            "old_outline",
            &json!({"file_path": "src/lib.rs"}).to_string(),
        )?
        .out()
        .to_string();
    assert_eq!(out.trim_end(), "1-1 pub fn one()\n3-3 pub struct Two");
    Ok(())
}
