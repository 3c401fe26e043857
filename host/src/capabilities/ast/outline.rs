//! Definitions in a syntax tree: functions, methods, types, traits, classes, constants and
//! modules, nested as the source nests them, each with its line range and a one-line signature.
//!
//! A walk over node kinds, one set of rules per language family. It never enters a function's
//! body, so locals and closures stay out; it does enter containers (impl, trait, class, namespace,
//! module) and whatever statements wrap definitions (`export`, `#ifdef`, `extern "C"`, templates,
//! decorators). Must not read files or parse: it is handed a tree.

use super::lang::Lang;
use serde::{Deserialize, Serialize};
use tree_sitter::{Node, Tree};

/// Longest signature kept, in characters; longer ones end with `…`.
pub const MAX_SIGNATURE: usize = 160;
/// Most definitions reported for one file.
pub const MAX_SYMBOLS: usize = 5000;

/// What a definition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Function,
    Method,
    Class,
    Struct,
    Enum,
    Union,
    Trait,
    Interface,
    Impl,
    Type,
    Constant,
    Module,
    Macro,
}

/// The names a `kind` filter accepts.
pub const KINDS: &str = "function (methods too), method, type (any struct, enum, union, class, interface, trait or alias), \
     class, struct, enum, union, trait, interface, impl, constant, module, macro";

impl Kind {
    /// The name the contract and the tools use.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Function => "function",
            Kind::Method => "method",
            Kind::Class => "class",
            Kind::Struct => "struct",
            Kind::Enum => "enum",
            Kind::Union => "union",
            Kind::Trait => "trait",
            Kind::Interface => "interface",
            Kind::Impl => "impl",
            Kind::Type => "type",
            Kind::Constant => "constant",
            Kind::Module => "module",
            Kind::Macro => "macro",
        }
    }

    /// Whether the filter `name` takes this kind: `function` includes methods and `type` every
    /// kind of type; other names are exact. `None` for a name that is no kind.
    pub fn matches(self, name: &str) -> Option<bool> {
        let exact = |k: Kind| Some(self == k);
        match name {
            "function" => Some(matches!(self, Kind::Function | Kind::Method)),
            "type" => Some(matches!(
                self,
                Kind::Class
                    | Kind::Struct
                    | Kind::Enum
                    | Kind::Union
                    | Kind::Trait
                    | Kind::Interface
                    | Kind::Type
            )),
            "method" => exact(Kind::Method),
            "class" => exact(Kind::Class),
            "struct" => exact(Kind::Struct),
            "enum" => exact(Kind::Enum),
            "union" => exact(Kind::Union),
            "trait" => exact(Kind::Trait),
            "interface" => exact(Kind::Interface),
            "impl" => exact(Kind::Impl),
            "constant" => exact(Kind::Constant),
            "module" => exact(Kind::Module),
            "macro" => exact(Kind::Macro),
            _ => None,
        }
    }
}

/// One definition. Lines are 1-based and inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Symbol {
    pub kind: Kind,
    pub name: String,
    pub start_line: u32,
    pub end_line: u32,
    /// The line its name is on (after any attributes, decorators or annotations).
    pub name_line: u32,
    pub signature: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Symbol>,
    /// A C/C++ prototype (declared, not defined here).
    #[serde(skip)]
    pub prototype: bool,
}

/// The definitions in `tree`, which `lang` parsed from `src`.
pub fn symbols(lang: Lang, tree: &Tree, src: &[u8]) -> Vec<Symbol> {
    let mut walker = Walker {
        lang,
        src,
        count: 0,
    };
    let mut out = Vec::new();
    walker.walk(tree.root_node(), false, &mut out);
    out
}

/// How many syntax errors the tree holds, and the first lines they are on (at most `max`).
pub fn syntax_errors(tree: &Tree, max: usize) -> (usize, Vec<u32>) {
    let mut count = 0;
    let mut lines: Vec<u32> = Vec::new();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        if node.is_error() || node.is_missing() {
            count += 1;
            let line = node.start_position().row as u32 + 1;
            if lines.len() < max && !lines.contains(&line) {
                lines.push(line);
            }
            continue;
        }
        if node.has_error() {
            let mut cursor = node.walk();
            let children: Vec<Node> = node.children(&mut cursor).collect();
            stack.extend(children.into_iter().rev());
        }
    }
    lines.sort_unstable();
    (count, lines)
}

/// What to do with one node.
enum Step<'t> {
    Defs(Vec<Def<'t>>),
    Descend,
    Skip,
}

impl<'t> From<Option<Def<'t>>> for Step<'t> {
    fn from(d: Option<Def<'t>>) -> Self {
        d.map_or(Step::Skip, |d| Step::Defs(vec![d]))
    }
}

/// A definition found, before its children are walked.
struct Def<'t> {
    kind: Kind,
    name: String,
    name_node: Node<'t>,
    /// The node whose lines the definition spans.
    node: Node<'t>,
    /// Where its signature ends (the start of its body, or the end of the node).
    header_end: usize,
    has_body: bool,
    /// Put before the signature ("type " for a Go type spec, whose keyword sits on its parent).
    prefix: &'static str,
    /// A signature made up by the rule (C typedefs of structs).
    signature: Option<String>,
    /// Walked for nested definitions; the flag says whether they are members of a type.
    members: Option<(Node<'t>, bool)>,
    prototype: bool,
}

impl<'t> Def<'t> {
    fn members(mut self, body: Option<Node<'t>>, in_type: bool) -> Self {
        self.members = body.map(|b| (b, in_type));
        self
    }
}

struct Walker<'s> {
    lang: Lang,
    src: &'s [u8],
    count: usize,
}

fn field<'t>(node: Node<'t>, name: &str) -> Option<Node<'t>> {
    node.child_by_field_name(name)
}

fn is_annotation(kind: &str) -> bool {
    matches!(
        kind,
        "decorator"
            | "annotation"
            | "marker_annotation"
            | "attribute_item"
            | "attribute_declaration"
            | "line_comment"
            | "block_comment"
            | "comment"
    )
}

/// An all-caps name, the convention for a constant in Python.
fn is_constant_name(name: &str) -> bool {
    name.chars().any(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

impl<'s> Walker<'s> {
    fn walk<'t>(&mut self, node: Node<'t>, in_type: bool, out: &mut Vec<Symbol>) {
        let mut cursor = node.walk();
        let children: Vec<Node<'t>> = node.named_children(&mut cursor).collect();
        for child in children {
            if self.count >= MAX_SYMBOLS {
                return;
            }
            match self.classify(child, in_type) {
                Step::Defs(defs) => {
                    for d in defs {
                        let symbol = self.symbol(d);
                        out.push(symbol);
                    }
                }
                Step::Descend => self.walk(child, in_type, out),
                Step::Skip => {}
            }
        }
        if self.lang.is_c_family() {
            drop_prototypes_of_definitions(out);
        }
    }

    fn symbol(&mut self, d: Def<'_>) -> Symbol {
        self.count += 1;
        let mut children = Vec::new();
        if let Some((body, in_type)) = d.members {
            self.walk(body, in_type, &mut children);
        }
        let start = d.node.start_position();
        let end = d.node.end_position();
        // A node that ends at the start of a line (a #define with its newline) ends on the line before.
        let end_row = if end.column == 0 && end.row > start.row {
            end.row
        } else {
            end.row + 1
        };
        let signature = match d.signature {
            Some(s) => cut(s),
            None => {
                let start = self.header_start(d.node);
                let mut end = d.header_end;
                // A constant's value may be a table of thousands of lines: its first line is
                // signature enough.
                let more = d.kind == Kind::Constant
                    && !d.has_body
                    && match self
                        .src
                        .get(start..end)
                        .and_then(|t| memchr::memchr(b'\n', t.trim_ascii_end()))
                    {
                        Some(nl) => {
                            end = start + nl;
                            true
                        }
                        None => false,
                    };
                let mut s = self.signature(d.prefix, start, end, d.has_body);
                if more && !s.ends_with("{…}") {
                    s.push_str(" …");
                }
                s
            }
        };
        Symbol {
            kind: d.kind,
            name: d.name,
            start_line: start.row as u32 + 1,
            end_line: end_row as u32,
            name_line: d.name_node.start_position().row as u32 + 1,
            signature,
            children,
            prototype: d.prototype,
        }
    }

    fn text(&self, node: Node<'_>) -> String {
        String::from_utf8_lossy(&self.src[node.byte_range()]).into_owned()
    }

    /// Where a signature starts: the node, less leading attributes, decorators, annotations and
    /// comments (and for JavaScript, including an `export` around it).
    fn header_start(&self, node: Node<'_>) -> usize {
        let mut start = node.start_byte();
        if self.lang.is_js_family()
            && let Some(p) = node.parent()
            && p.kind() == "export_statement"
        {
            start = p.start_byte();
        }
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if is_annotation(child.kind()) {
                start = child.end_byte();
            } else if child.kind() == "modifiers" {
                let mut inner = child.walk();
                for m in child.children(&mut inner) {
                    if !is_annotation(m.kind()) {
                        break;
                    }
                    start = m.end_byte();
                }
                break;
            } else {
                break;
            }
        }
        start
    }

    fn signature(&self, prefix: &str, start: usize, end: usize, has_body: bool) -> String {
        let end = end.min(self.src.len());
        let text = String::from_utf8_lossy(&self.src[start.min(end)..end]);
        let mut s = String::from(prefix);
        for (i, word) in text.split_whitespace().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(word);
        }
        // Without a body field, a brace opens a body or a literal: show that one is there.
        if !has_body && let Some(at) = s.find('{') {
            s.truncate(at);
            s = s.trim_end().to_string();
            s.push_str(" {…}");
        }
        let trimmed =
            s.trim_end_matches(|c: char| c == ';' || c == ':' || c == '{' || c.is_whitespace());
        cut(trimmed.to_string())
    }

    /// A definition named by the node's `name` field, its signature ending where its `body` starts.
    fn named<'t>(&self, node: Node<'t>, kind: Kind) -> Option<Def<'t>> {
        let name_node = field(node, "name")?;
        Some(self.def(node, kind, name_node, self.text(name_node)))
    }

    fn def<'t>(&self, node: Node<'t>, kind: Kind, name_node: Node<'t>, name: String) -> Def<'t> {
        let body = field(node, "body");
        Def {
            kind,
            name,
            name_node,
            node,
            header_end: body.map_or(node.end_byte(), |b| b.start_byte()),
            has_body: body.is_some(),
            prefix: "",
            signature: None,
            members: None,
            prototype: false,
        }
    }

    fn classify<'t>(&self, node: Node<'t>, in_type: bool) -> Step<'t> {
        match self.lang {
            Lang::Rust => self.rust(node, in_type),
            Lang::Python => self.python(node, in_type),
            Lang::JavaScript | Lang::TypeScript | Lang::Tsx => self.js(node),
            Lang::Go => self.go(node),
            Lang::C | Lang::Cpp => self.c(node, in_type),
            Lang::Java => self.java(node),
        }
    }

    fn rust<'t>(&self, node: Node<'t>, in_type: bool) -> Step<'t> {
        let func = if in_type {
            Kind::Method
        } else {
            Kind::Function
        };
        let body = field(node, "body");
        match node.kind() {
            "function_item" | "function_signature_item" => self.named(node, func).into(),
            "struct_item" => self.named(node, Kind::Struct).into(),
            "enum_item" => self.named(node, Kind::Enum).into(),
            "union_item" => self.named(node, Kind::Union).into(),
            "const_item" | "static_item" => self.named(node, Kind::Constant).into(),
            "type_item" => self.named(node, Kind::Type).into(),
            "macro_definition" => self.named(node, Kind::Macro).into(),
            "trait_item" => self
                .named(node, Kind::Trait)
                .map(|d| d.members(body, true))
                .into(),
            "mod_item" => self
                .named(node, Kind::Module)
                .map(|d| d.members(body, false))
                .into(),
            "impl_item" => {
                let Some(ty) = field(node, "type") else {
                    return Step::Skip;
                };
                // `impl<T> Display for Wrapper<T>` is named `Wrapper`.
                let mut name_node = ty;
                for _ in 0..8 {
                    match name_node.kind() {
                        "generic_type" | "reference_type" | "pointer_type" => {
                            match field(name_node, "type") {
                                Some(t) => name_node = t,
                                None => break,
                            }
                        }
                        "scoped_type_identifier" => match field(name_node, "name") {
                            Some(t) => name_node = t,
                            None => break,
                        },
                        _ => break,
                    }
                }
                let name = self.text(name_node);
                Step::Defs(vec![
                    self.def(node, Kind::Impl, name_node, name)
                        .members(body, true),
                ])
            }
            "macro_invocation"
            | "use_declaration"
            | "attribute_item"
            | "inner_attribute_item"
            | "line_comment"
            | "block_comment"
            | "extern_crate_declaration"
            | "expression_statement"
            | "let_declaration" => Step::Skip,
            _ => Step::Descend,
        }
    }

    fn python<'t>(&self, node: Node<'t>, in_type: bool) -> Step<'t> {
        let func = if in_type {
            Kind::Method
        } else {
            Kind::Function
        };
        match node.kind() {
            "function_definition" => self.named(node, func).into(),
            "class_definition" => self
                .named(node, Kind::Class)
                .map(|d| d.members(field(node, "body"), true))
                .into(),
            "expression_statement" => {
                let Some(assign) = node.named_child(0).filter(|n| n.kind() == "assignment") else {
                    return Step::Skip;
                };
                let Some(left) = field(assign, "left").filter(|l| l.kind() == "identifier") else {
                    return Step::Skip;
                };
                let name = self.text(left);
                if !is_constant_name(&name) {
                    return Step::Skip;
                }
                Step::Defs(vec![self.def(node, Kind::Constant, left, name)])
            }
            "import_statement"
            | "import_from_statement"
            | "future_import_statement"
            | "comment"
            | "decorator"
            | "pass_statement"
            | "return_statement" => Step::Skip,
            _ => Step::Descend,
        }
    }

    fn js<'t>(&self, node: Node<'t>) -> Step<'t> {
        let body = field(node, "body");
        match node.kind() {
            "function_declaration" | "generator_function_declaration" | "function_signature" => {
                self.named(node, Kind::Function).into()
            }
            "method_definition" | "method_signature" | "abstract_method_signature" => {
                self.named(node, Kind::Method).into()
            }
            "class_declaration" | "abstract_class_declaration" => self
                .named(node, Kind::Class)
                .map(|d| d.members(body, true))
                .into(),
            "interface_declaration" => self
                .named(node, Kind::Interface)
                .map(|d| d.members(body, true))
                .into(),
            "type_alias_declaration" => self.named(node, Kind::Type).into(),
            "enum_declaration" => self.named(node, Kind::Enum).into(),
            "module" | "internal_module" => self
                .named(node, Kind::Module)
                .map(|d| d.members(body, false))
                .into(),
            "lexical_declaration" | "variable_declaration" => self.js_variables(node),
            // Function expressions are bodies: their locals are not the file's definitions.
            "arrow_function"
            | "function_expression"
            | "function"
            | "generator_function"
            | "import_statement"
            | "comment"
            | "public_field_definition"
            | "field_definition"
            | "property_signature"
            | "decorator"
            | "string"
            | "template_string" => Step::Skip,
            _ => Step::Descend,
        }
    }

    /// `const f = () => …` is a function, `const C = class …` a class, and a top-level `const`
    /// of anything else a constant.
    fn js_variables<'t>(&self, node: Node<'t>) -> Step<'t> {
        let top = node
            .parent()
            .is_some_and(|p| matches!(p.kind(), "program" | "export_statement"));
        let is_const = node.kind() == "lexical_declaration"
            && node.child(0).is_some_and(|c| c.kind() == "const");
        let mut defs = Vec::new();
        let mut cursor = node.walk();
        for decl in node.named_children(&mut cursor) {
            if decl.kind() != "variable_declarator" {
                continue;
            }
            let Some(name_node) = field(decl, "name").filter(|n| n.kind() == "identifier") else {
                continue;
            };
            let name = self.text(name_node);
            let value = field(decl, "value");
            let mut d = self.def(node, Kind::Constant, name_node, name);
            d.header_end = decl.end_byte();
            match value.map(|v| (v.kind(), v)) {
                Some((
                    "arrow_function" | "function_expression" | "function" | "generator_function",
                    v,
                )) => {
                    d.kind = Kind::Function;
                    if let Some(b) = field(v, "body") {
                        d.header_end = b.start_byte();
                        d.has_body = true;
                    }
                }
                Some(("class", v)) => {
                    let body = field(v, "body");
                    if let Some(b) = body {
                        d.header_end = b.start_byte();
                        d.has_body = true;
                    }
                    d.kind = Kind::Class;
                    d = d.members(body, true);
                }
                _ if is_const && top => {}
                _ => continue,
            }
            defs.push(d);
        }
        Step::Defs(defs)
    }

    fn go<'t>(&self, node: Node<'t>) -> Step<'t> {
        match node.kind() {
            "function_declaration" => self.named(node, Kind::Function).into(),
            "method_declaration" | "method_elem" => self.named(node, Kind::Method).into(),
            "type_spec" | "type_alias" => {
                let ty = field(node, "type");
                let kind = match ty.map(|t| t.kind()) {
                    Some("struct_type") if node.kind() == "type_spec" => Kind::Struct,
                    Some("interface_type") if node.kind() == "type_spec" => Kind::Interface,
                    _ => Kind::Type,
                };
                self.named(node, kind)
                    .map(|mut d| {
                        d.prefix = "type ";
                        if kind == Kind::Interface {
                            d = d.members(ty, true);
                        }
                        d
                    })
                    .into()
            }
            "const_spec" => {
                let mut defs = Vec::new();
                let mut cursor = node.walk();
                for name_node in node.children_by_field_name("name", &mut cursor) {
                    if name_node.kind() != "identifier" {
                        continue;
                    }
                    let mut d = self.def(node, Kind::Constant, name_node, self.text(name_node));
                    d.prefix = "const ";
                    defs.push(d);
                }
                Step::Defs(defs)
            }
            "var_declaration" | "import_declaration" | "package_clause" | "comment" => Step::Skip,
            _ => Step::Descend,
        }
    }

    fn c<'t>(&self, node: Node<'t>, in_type: bool) -> Step<'t> {
        match node.kind() {
            "function_definition" => {
                let Some(decl) = field(node, "declarator") else {
                    return Step::Skip;
                };
                self.c_function(node, decl, in_type).into()
            }
            "declaration" | "field_declaration" => self.c_declaration(node, in_type),
            "struct_specifier" | "union_specifier" | "enum_specifier" | "class_specifier" => {
                self.c_type(node).into()
            }
            "type_definition" => self.c_typedef(node).into(),
            "alias_declaration" => self.named(node, Kind::Type).into(),
            "namespace_definition" => {
                let body = field(node, "body");
                let d = match field(node, "name") {
                    Some(n) => self.def(node, Kind::Module, n, self.text(n)),
                    None => self.def(node, Kind::Module, node, "(anonymous)".into()),
                };
                Step::Defs(vec![d.members(body, false)])
            }
            "preproc_def" if field(node, "value").is_some() => {
                self.named(node, Kind::Constant).into()
            }
            "preproc_function_def" => self.named(node, Kind::Macro).into(),
            "preproc_def"
            | "comment"
            | "preproc_include"
            | "using_declaration"
            | "access_specifier"
            | "expression_statement"
            | "static_assert_declaration"
            | "friend_declaration"
            | "compound_statement" => Step::Skip,
            _ => Step::Descend,
        }
    }

    /// A function definition or prototype whose declarator is `decl`.
    fn c_function<'t>(&self, node: Node<'t>, decl: Node<'t>, in_type: bool) -> Option<Def<'t>> {
        let name_node = declarator_name(decl)?;
        // `void Widget::draw() {…}` is a method of Widget, named draw.
        let mut leaf = name_node;
        while leaf.kind() == "qualified_identifier" {
            leaf = field(leaf, "name")?;
        }
        let kind = if in_type || name_node.kind() == "qualified_identifier" {
            Kind::Method
        } else {
            Kind::Function
        };
        let name = self.text(leaf);
        Some(self.def(node, kind, leaf, name))
    }

    fn c_declaration<'t>(&self, node: Node<'t>, in_type: bool) -> Step<'t> {
        let mut defs = Vec::new();
        let mut cursor = node.walk();
        for decl in node.children_by_field_name("declarator", &mut cursor) {
            if is_function_declarator(decl)
                && let Some(mut d) = self.c_function(node, decl, in_type)
            {
                d.prototype = true;
                defs.push(d);
            }
        }
        if !defs.is_empty() {
            return Step::Defs(defs);
        }
        // `struct point { int x, y; } origin;` defines the struct.
        match field(node, "type") {
            Some(ty) if field(ty, "body").is_some() => self.c_type(ty).into(),
            _ => Step::Skip,
        }
    }

    fn c_type_kind(&self, node: Node<'_>) -> Option<Kind> {
        match node.kind() {
            "struct_specifier" => Some(Kind::Struct),
            "union_specifier" => Some(Kind::Union),
            "enum_specifier" => Some(Kind::Enum),
            "class_specifier" => Some(Kind::Class),
            _ => None,
        }
    }

    /// Members of a C++ class or struct are walked; a C struct's are fields.
    fn c_members<'t>(&self, kind: Kind, body: Option<Node<'t>>) -> Option<Node<'t>> {
        (self.lang == Lang::Cpp && matches!(kind, Kind::Struct | Kind::Class))
            .then_some(body)
            .flatten()
    }

    /// A struct, union, enum or class with a body (a bare `struct x *p` names one, it defines none).
    fn c_type<'t>(&self, node: Node<'t>) -> Option<Def<'t>> {
        let kind = self.c_type_kind(node)?;
        let body = field(node, "body")?;
        let mut name_node = field(node, "name")?;
        for _ in 0..8 {
            match name_node.kind() {
                "qualified_identifier" | "template_type" => name_node = field(name_node, "name")?,
                _ => break,
            }
        }
        let name = self.text(name_node);
        let members = self.c_members(kind, Some(body));
        Some(self.def(node, kind, name_node, name).members(members, true))
    }

    /// `typedef struct {…} point;` defines the struct `point`; `typedef int id;` the type `id`.
    fn c_typedef<'t>(&self, node: Node<'t>) -> Option<Def<'t>> {
        let decl = field(node, "declarator")?;
        let name_node = declarator_name(decl)?;
        let name = self.text(name_node);
        let ty = field(node, "type");
        if let Some(ty) = ty
            && let Some(kind) = self.c_type_kind(ty)
            && let Some(body) = field(ty, "body")
        {
            let head = self.signature("", ty.start_byte(), body.start_byte(), true);
            let mut d = self.def(node, kind, name_node, name.clone());
            d.signature = Some(format!("typedef {head} {name}"));
            let members = self.c_members(kind, Some(body));
            return Some(d.members(members, true));
        }
        Some(self.def(node, Kind::Type, name_node, name))
    }

    fn java<'t>(&self, node: Node<'t>) -> Step<'t> {
        let body = field(node, "body");
        match node.kind() {
            "class_declaration" | "record_declaration" => self
                .named(node, Kind::Class)
                .map(|d| d.members(body, true))
                .into(),
            "interface_declaration" | "annotation_type_declaration" => self
                .named(node, Kind::Interface)
                .map(|d| d.members(body, true))
                .into(),
            "enum_declaration" => self
                .named(node, Kind::Enum)
                .map(|d| d.members(body, true))
                .into(),
            "method_declaration" | "constructor_declaration" => {
                self.named(node, Kind::Method).into()
            }
            "field_declaration" | "constant_declaration" => {
                let constant = node.kind() == "constant_declaration"
                    || node
                        .named_child(0)
                        .filter(|m| m.kind() == "modifiers")
                        .is_some_and(|m| {
                            let words = self.text(m);
                            let has = |w: &str| words.split_whitespace().any(|x| x == w);
                            has("static") && has("final")
                        });
                if !constant {
                    return Step::Skip;
                }
                let mut defs = Vec::new();
                let mut cursor = node.walk();
                for decl in node.children_by_field_name("declarator", &mut cursor) {
                    if let Some(n) = field(decl, "name") {
                        defs.push(self.def(node, Kind::Constant, n, self.text(n)));
                    }
                }
                Step::Defs(defs)
            }
            "package_declaration"
            | "import_declaration"
            | "line_comment"
            | "block_comment"
            | "block"
            | "static_initializer"
            | "enum_constant" => Step::Skip,
            _ => Step::Descend,
        }
    }
}

/// The declarator inside a C declarator: its `declarator` field, or (for references and
/// parentheses, which have none) its first named child that is not a qualifier.
fn inner(node: Node<'_>) -> Option<Node<'_>> {
    field(node, "declarator").or_else(|| {
        let mut cursor = node.walk();
        node.named_children(&mut cursor).find(|c| {
            !matches!(
                c.kind(),
                "type_qualifier" | "attribute_specifier" | "ms_call_modifier"
            )
        })
    })
}

/// The node that names what a C declarator declares (through pointers, references, arrays,
/// parentheses, initialisers and function parameter lists).
fn declarator_name(mut node: Node<'_>) -> Option<Node<'_>> {
    for _ in 0..32 {
        match node.kind() {
            "identifier"
            | "field_identifier"
            | "type_identifier"
            | "operator_name"
            | "destructor_name"
            | "qualified_identifier"
            | "primitive_type" => return Some(node),
            _ => node = inner(node)?,
        }
    }
    None
}

/// True when `decl` declares a function (`int f(void)`, `char *f(int)`), not a pointer to one.
fn is_function_declarator(mut decl: Node<'_>) -> bool {
    for _ in 0..32 {
        match decl.kind() {
            "function_declarator" => {
                return field(decl, "declarator").is_some_and(|d| {
                    matches!(
                        d.kind(),
                        "identifier"
                            | "field_identifier"
                            | "qualified_identifier"
                            | "operator_name"
                            | "destructor_name"
                    )
                });
            }
            "pointer_declarator" | "reference_declarator" | "attributed_declarator" => {
                match inner(decl) {
                    Some(d) => decl = d,
                    None => return false,
                }
            }
            _ => return false,
        }
    }
    false
}

/// Drop prototypes of functions this same list defines (the `static` forward declarations at the
/// top of a C file).
fn drop_prototypes_of_definitions(out: &mut Vec<Symbol>) {
    if !out.iter().any(|s| s.prototype) {
        return;
    }
    let defined: std::collections::HashSet<String> = out
        .iter()
        .filter(|s| !s.prototype && matches!(s.kind, Kind::Function | Kind::Method))
        .map(|s| s.name.clone())
        .collect();
    out.retain(|s| !(s.prototype && defined.contains(&s.name)));
}

fn cut(mut s: String) -> String {
    if let Some((at, _)) = s.char_indices().nth(MAX_SIGNATURE) {
        s.truncate(at);
        s.push('…');
    }
    s
}
